package harness

/**
 * A small interpreter of declarative `pipeline {}`: agent, options, environment, stages (nested too),
 * steps, script, when (branch, expression, not, allOf, anyOf, changeRequest, buildingTag, environment)
 * and post (always, success, failure, unstable, aborted, unsuccessful, cleanup).
 * Stages after a failed one are skipped; the build ends without rethrowing, as in Jenkins.
 */
class DeclarativePipeline {
    final PipelineTestHelper helper
    final Object script

    DeclarativePipeline(PipelineTestHelper helper, Object script) {
        this.helper = helper
        this.script = script
    }

    /** Build the model from the closure and run it. */
    void run(Closure body) {
        PipelineDsl model = new PipelineDsl(helper)
        configure(body, model)
        helper.pipelineOptions.addAll(model.options)
        helper.pipelineFailure = null
        Throwable failure = null
        Closure all = {
            Closure stagesRun = { runStages(model.stages) }
            withEnvironment(model.environment, stagesRun)
        }
        try {
            runWithAgent(model.agentLabel, all)
        } catch (Throwable t) {
            failure = markFailed(t)
        }
        failure = runPost(model.post, failure) ?: failure
        helper.pipelineFailure = failure
        if (failure != null) {
            helper.log << "ERROR: ${failure.message}".toString()
        }
    }

    private Throwable markFailed(Throwable t) {
        if (helper.currentBuild.currentResult != 'ABORTED') {
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

    /** Run stages in order; after a failure the rest are recorded as skipped, then the failure is rethrown. */
    private void runStages(List<StageDef> defs) {
        Throwable failure = null
        for (StageDef s : defs) {
            try {
                runStage(s)
            } catch (Throwable t) {
                failure = failure ?: t
            }
        }
        if (failure != null) {
            throw failure
        }
    }

    private void runStage(StageDef s) {
        if (helper.currentBuild.currentResult in ['FAILURE', 'ABORTED']) {
            helper.skippedStages << s.name
            return
        }
        if (s.when != null && !s.when.evaluate()) {
            helper.skippedStages << s.name
            return
        }
        Closure body = {
            Throwable failure = null
            try {
                withStageOptions(s.options) {
                    runWithAgent(s.agentLabel) {
                        withEnvironment(s.environment) {
                            if (s.steps != null) {
                                runSteps(s.steps)
                            } else {
                                runStages(s.stages)
                            }
                        }
                    }
                }
            } catch (Throwable t) {
                failure = markFailed(t)
            }
            Throwable postFailure = runPost(s.post, failure)
            Throwable end = failure ?: postFailure
            if (end != null) {
                throw end
            }
        }
        helper.invoke('stage', [s.name, body] as Object[])
    }

    /** Stage-level options that wrap the stage (lock, timeout, retry) run outside its agent, as in Jenkins. */
    private void withStageOptions(List<MethodCall> options, Closure body) {
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

    private void runWithAgent(String label, Closure body) {
        if (label == null) {
            body.call()
        } else {
            helper.invoke('node', [label, body] as Object[])
        }
    }

    private void withEnvironment(Map<String, Object> vars, Closure body) {
        if (!vars) {
            body.call()
            return
        }
        List<String> pairs = vars.collect { k, v -> "${k}=${v}".toString() }
        helper.invoke('withEnv', [pairs, body] as Object[])
    }

    /** Run post conditions; returns the first exception a post block threw. */
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
            if (block == null || !postApplies(cond, result)) {
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

    private static boolean postApplies(String cond, String result) {
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
            case 'unsuccessful':
                return result != 'SUCCESS'
            default:
                return false
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

        void beforeAgent(boolean ignored) { }
        void beforeInput(boolean ignored) { }
        void beforeOptions(boolean ignored) { }

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
