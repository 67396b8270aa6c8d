package harness

import org.jenkinsci.plugins.workflow.steps.FlowInterruptedException

/**
 * A small interpreter of declarative `pipeline {}` following pipeline-model-definition's
 * ModelInterpreter.groovy: agent (a node with its own workspace, `checkout scm`, and the checkout's
 * GIT_* variables around that stage only: CheckoutScript.groovy), options (pipeline-level timeout wraps
 * the stages and post; stage-level lock/timeout/retry wrap the stage; preserveStashes), environment,
 * stages (nested too), steps, script, when (branch, expression, not, allOf, anyOf, changeRequest,
 * buildingTag, environment; beforeAgent/beforeOptions/beforeInput) and every post condition (always,
 * changed, fixed, regression, aborted, failure, success, unstable, unsuccessful, notBuilt, cleanup).
 * Later stages are skipped only after an exception (a FAILURE result alone skips nothing); the build
 * ends without rethrowing, as in Jenkins. Restart from a top-level stage skips the stages before it;
 * stashes survive the build only with preserveStashes (workflow-api StashManager.java).
 */
class DeclarativePipeline {
    final PipelineTestHelper helper
    final Object script
    final BasePipelineTest test

    DeclarativePipeline(PipelineTestHelper helper, Object script, BasePipelineTest test) {
        this.helper = helper
        this.script = script
        this.test = test
    }

    /** Build the model from the closure and run it. */
    void run(Closure body) {
        PipelineDsl model = new PipelineDsl(helper)
        configure(body, model)
        helper.pipelineOptions.addAll(model.options)
        helper.pipelineFailure = null
        Throwable failure = null
        Closure all = {
            Throwable inner = null
            try {
                runWithAgent(model.agentLabel) {
                    withEnvironment(model.environment) {
                        runStages(model.stages, true)
                    }
                }
            } catch (Throwable t) {
                inner = markFailed(t)
            }
            inner = runPost(model.post, inner) ?: inner
            if (inner != null) {
                throw inner
            }
        }
        try {
            withOptions(model.options, all)
        } catch (Throwable t) {
            failure = markFailed(t)
        }
        helper.pipelineFailure = failure
        if (failure != null) {
            helper.log << "ERROR: ${failure.message}".toString()
        }
        if (!model.options.any { MethodCall o -> o.methodName == 'preserveStashes' }) {
            helper.stashes.clear()
        }
    }

    /** An exception sets the result: an interruption's own (ABORTED), anything else FAILURE. */
    private Throwable markFailed(Throwable t) {
        if (t instanceof FlowInterruptedException) {
            helper.currentBuild.result = ((FlowInterruptedException) t).result
        } else if (helper.currentBuild.currentResult != 'ABORTED') {
            helper.currentBuild.result = 'FAILURE'
        }
        return t
    }

    static void configure(Closure body, Object delegate) {
        Closure c = (Closure) body.clone()
        c.resolveStrategy = Closure.DELEGATE_FIRST
        c.delegate = delegate
        c.call()
    }

    /** Run stages in order; after an exception the rest are recorded as skipped, then it is rethrown. */
    private void runStages(List<StageDef> defs, boolean topLevel = false) {
        Throwable failure = null
        boolean restarting = topLevel && helper.restartFromStage != null
        for (StageDef s : defs) {
            if (restarting && s.name != helper.restartFromStage) {
                helper.skippedStages << s.name
                continue
            }
            restarting = false
            if (failure != null) {
                helper.skippedStages << s.name
                continue
            }
            try {
                runStage(s)
            } catch (Throwable t) {
                failure = t
            }
        }
        if (failure != null) {
            throw failure
        }
    }

    /**
     * ModelInterpreter: a stage enters its options, then its input, then its agent; `when` is evaluated
     * inside all three unless beforeOptions, beforeInput or beforeAgent moves it before that one.
     */
    private void runStage(StageDef s) {
        WhenDsl w = s.when
        boolean[] skipped = [false] as boolean[]
        // the stage's post runs inside its agent (its workspace), after the body
        Closure withPost = { Closure inner ->
            Throwable failure = null
            try {
                inner.call()
            } catch (Throwable t) {
                failure = markFailed(t)
            }
            if (skipped[0]) {
                return
            }
            Throwable postFailure = runPost(s.post, failure)
            Throwable end = failure ?: postFailure
            if (end != null) {
                throw end
            }
        }
        Closure body = {
            runWhenAt(w, 'options', skipped) {
                withOptions(s.options) {
                    runWhenAt(w, 'input', skipped) {
                        if (s.input != null) {
                            helper.invoke('input', [s.input] as Object[])
                        }
                        runWhenAt(w, 'agent', skipped) {
                            runWithAgent(s.agentLabel) {
                                withPost {
                                    runWhenAt(w, 'inside', skipped) {
                                        withEnvironment(s.environment) {
                                            if (s.steps != null) {
                                                runSteps(s.steps)
                                            } else {
                                                runStages(s.stages)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        helper.invoke('stage', [s.name, body] as Object[])
        if (skipped[0]) {
            helper.stages.remove(helper.stages.size() - 1)
            helper.skippedStages << s.name
        }
    }

    /** Evaluate `w` here if this is its point; a false condition skips the rest of the stage. */
    private static void runWhenAt(WhenDsl w, String point, boolean[] skipped, Closure body) {
        if (w != null && w.pointFor() == point && !w.evaluate()) {
            skipped[0] = true
            return
        }
        body.call()
    }

    /** Options that wrap a body (lock, timeout, retry), outermost first. */
    private void withOptions(List<MethodCall> options, Closure body) {
        Closure run = body
        for (int i = options.size() - 1; i >= 0; i--) {
            MethodCall o = options[i]
            if (o.methodName in ['lock', 'timeout', 'retry']) {
                Closure inner = run
                Object[] args = (o.args.toList() + [inner]) as Object[]
                run = { helper.invoke(o.methodName, args) }
            }
        }
        run.call()
    }

    private void runSteps(Closure steps) {
        Closure c = (Closure) steps.clone()
        c.resolveStrategy = Closure.DELEGATE_FIRST
        c.delegate = new StepsForwarder(script)
        c.call()
    }

    /** A declarative agent: a node, `checkout scm`, and the checkout's variables around the body only. */
    private void runWithAgent(String label, Closure body) {
        if (label == null) {
            body.call()
            return
        }
        helper.invoke('node', [label, {
            helper.invoke('checkout', [helper.binding.getVariable('scm')] as Object[])
            Map<String, String> vars = helper.scmVars ?: [:]
            if (vars) {
                helper.invoke('withEnv', [vars.collect { k, v -> "${k}=${v}".toString() }, body] as Object[])
            } else {
                body.call()
            }
        }] as Object[])
    }

    private void withEnvironment(Map<String, Object> vars, Closure body) {
        if (!vars) {
            body.call()
            return
        }
        List<String> pairs = vars.collect { k, v -> "${k}=${v}".toString() }
        helper.invoke('withEnv', [pairs, body] as Object[])
    }

    /** Run post conditions in Declarative's order; returns the first exception a post block threw. */
    private Throwable runPost(PostDsl post, Throwable failure) {
        if (post == null) {
            return null
        }
        Throwable thrown = null
        String result = failure != null && helper.currentBuild.currentResult == 'SUCCESS' ?
            'FAILURE' : helper.currentBuild.currentResult
        List<String> order = ['always', 'changed', 'fixed', 'regression', 'aborted', 'failure', 'success',
                              'unstable', 'unsuccessful', 'notBuilt', 'cleanup']
        for (String cond : order) {
            Closure block = post.blocks[cond]
            if (block == null || !postApplies(cond, result, helper.previousResult)) {
                continue
            }
            try {
                runSteps(block)
            } catch (Throwable t) {
                markFailed(t)
                thrown = thrown ?: t
            }
        }
        return thrown
    }

    /**
     * pipeline-model-definition model/conditions/*.java: Changed (the previous build had another result),
     * Fixed (SUCCESS after UNSTABLE or FAILURE), Regression (worse than the previous build), NotBuilt.
     */
    static boolean postApplies(String cond, String result, String previous) {
        List<String> order = FakeRun.ORDER
        switch (cond) {
            case 'always':
            case 'cleanup':
                return true
            case 'success':
                return result == 'SUCCESS'
            case 'failure':
                return result == 'FAILURE'
            case 'unstable':
                return result == 'UNSTABLE'
            case 'aborted':
                return result == 'ABORTED'
            case 'notBuilt':
                return result == 'NOT_BUILT'
            case 'unsuccessful':
                return result != 'SUCCESS'
            case 'changed':
                return previous != null && previous != result
            case 'fixed':
                return result == 'SUCCESS' && previous in ['UNSTABLE', 'FAILURE']
            case 'regression':
                return previous != null && order.indexOf(result) > order.indexOf(previous) &&
                    result in ['UNSTABLE', 'FAILURE', 'ABORTED']
            default:
                throw new IllegalArgumentException("unknown post condition '${cond}'")
        }
    }

    // ---- model -------------------------------------------------------------------------------

    /** A declarative stage as written. */
    static class StageDef {
        String name
        String agentLabel
        WhenDsl when
        Closure steps
        List<StageDef> stages = []
        PostDsl post
        Map<String, Object> environment = [:]
        List<MethodCall> options = []
        Map input
    }

    /** Words valid directly inside `pipeline {}`. */
    static class PipelineDsl {
        final PipelineTestHelper helper
        String agentLabel
        List<StageDef> stages = []
        PostDsl post
        Map<String, Object> environment = [:]
        List<MethodCall> options = []

        PipelineDsl(PipelineTestHelper helper) {
            this.helper = helper
        }

        String getNone() { return 'none' }
        String getAny() { return 'any' }

        void agent(String kind) {
            agentLabel = kind == 'any' ? '' : null
        }

        void agent(Closure c) {
            AgentDsl a = new AgentDsl()
            configure(c, a)
            agentLabel = a.label
        }

        void options(Closure c) {
            OptionsDsl o = new OptionsDsl()
            configure(c, o)
            options.addAll(o.calls)
        }

        void environment(Closure c) {
            EnvironmentDsl e = new EnvironmentDsl()
            configure(c, e)
            environment.putAll(e.vars)
        }

        void stages(Closure c) {
            StagesDsl s = new StagesDsl(helper)
            configure(c, s)
            stages.addAll(s.stages)
        }

        void post(Closure c) {
            post = new PostDsl()
            configure(c, post)
        }
    }

    /** Words valid inside `stages {}`. */
    static class StagesDsl {
        final PipelineTestHelper helper
        List<StageDef> stages = []

        StagesDsl(PipelineTestHelper helper) {
            this.helper = helper
        }

        void stage(String name, Closure c) {
            StageDsl s = new StageDsl(helper, name)
            configure(c, s)
            stages << s.model
        }
    }

    /** Words valid inside `stage('x') {}`. */
    static class StageDsl {
        final PipelineTestHelper helper
        final StageDef model

        StageDsl(PipelineTestHelper helper, String name) {
            this.helper = helper
            this.model = new StageDef(name: name)
        }

        String getNone() { return 'none' }
        String getAny() { return 'any' }

        void agent(String kind) {
            model.agentLabel = kind == 'any' ? '' : null
        }

        void agent(Closure c) {
            AgentDsl a = new AgentDsl()
            configure(c, a)
            model.agentLabel = a.label
        }

        void when(Closure c) {
            WhenDsl w = new WhenDsl(helper, WhenDsl.ALL)
            configure(c, w)
            model.when = w
        }

        void steps(Closure c) {
            model.steps = c
        }

        /** The stage `input {}` directive: message, id, ok, submitter, submitterParameter, parameters. */
        void input(Closure c) {
            Map m = [:]
            Closure k = (Closure) c.clone()
            k.resolveStrategy = Closure.DELEGATE_FIRST
            k.delegate = new Object() {
                Object methodMissing(String name, Object args) {
                    m[name] = (args as Object[])[0]
                    return null
                }
            }
            k.call()
            model.input = m
        }

        void options(Closure c) {
            OptionsDsl o = new OptionsDsl()
            configure(c, o)
            model.options.addAll(o.calls)
        }

        void stages(Closure c) {
            StagesDsl s = new StagesDsl(helper)
            configure(c, s)
            model.stages.addAll(s.stages)
        }

        void environment(Closure c) {
            EnvironmentDsl e = new EnvironmentDsl()
            configure(c, e)
            model.environment.putAll(e.vars)
        }

        void post(Closure c) {
            model.post = new PostDsl()
            configure(c, model.post)
        }
    }

    /** `agent { label 'x' }`. */
    static class AgentDsl {
        String label = ''

        void label(String l) {
            label = l
        }
    }



    /** `when {}` conditions; ALL for the top level and allOf, ANY for anyOf, NOT for not. */
    static class WhenDsl {
        static final String ALL = 'all'
        static final String ANY = 'any'
        static final String NOT = 'not'
        final PipelineTestHelper helper
        final String mode
        final List<Closure> conditions = []

        WhenDsl(PipelineTestHelper helper, String mode) {
            this.helper = helper
            this.mode = mode
        }

        boolean beforeAgent = false
        boolean beforeInput = false
        boolean beforeOptions = false

        void beforeAgent(boolean b) { beforeAgent = b }
        void beforeInput(boolean b) { beforeInput = b }
        void beforeOptions(boolean b) { beforeOptions = b }

        /** Where Declarative evaluates this `when`: before options, input or agent, or inside the agent. */
        String pointFor() {
            return beforeOptions ? 'options' : (beforeInput ? 'input' : (beforeAgent ? 'agent' : 'inside'))
        }

        void branch(String pattern) {
            PipelineTestHelper h = helper
            conditions << { ->
                String b = h.env.BRANCH_NAME
                b != null && b ==~ PipelineTestHelper.antToRegex(pattern)
            }
        }

        void changeRequest(Map ignored = [:]) {
            PipelineTestHelper h = helper
            conditions << { -> h.env.CHANGE_ID != null }
        }

        void buildingTag() {
            PipelineTestHelper h = helper
            conditions << { -> h.env.TAG_NAME != null }
        }

        void tag(String pattern) {
            PipelineTestHelper h = helper
            conditions << { -> h.env.TAG_NAME != null && h.env.TAG_NAME ==~ PipelineTestHelper.antToRegex(pattern) }
        }

        void environment(Map m) {
            PipelineTestHelper h = helper
            conditions << { -> h.env.get(m.name as String) == String.valueOf(m.value) }
        }

        void expression(Closure c) {
            conditions << { -> c.call() as boolean }
        }

        void not(Closure c) {
            nested(c, NOT)
        }

        void allOf(Closure c) {
            nested(c, ALL)
        }

        void anyOf(Closure c) {
            nested(c, ANY)
        }

        private void nested(Closure c, String m) {
            WhenDsl w = new WhenDsl(helper, m)
            configure(c, w)
            conditions << { -> w.evaluate() }
        }

        boolean evaluate() {
            List<Boolean> values = conditions.collect { Closure c -> c.call() as boolean }
            if (mode == NOT) {
                return !values.every { boolean v -> v }
            }
            if (mode == ANY) {
                return values.any { boolean v -> v }
            }
            return values.every { boolean v -> v }
        }
    }


}
