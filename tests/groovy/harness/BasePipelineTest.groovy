package harness

import org.jenkinsci.plugins.workflow.steps.FlowInterruptedException
import org.codehaus.groovy.control.CompilerConfiguration
import org.codehaus.groovy.control.customizers.ImportCustomizer
import org.junit.Before

/**
 * Base class of step tests (JenkinsPipelineUnit's BasePipelineTest + DeclarativePipelineTest in
 * one): a binding with env/params/currentBuild, the usual pipeline steps faked, every vars/ script
 * callable by name as a global variable, and a declarative `pipeline {}` interpreter.
 */
abstract class BasePipelineTest {
    private static final Map<String, Class> COMPILED = [:]
    private static GroovyClassLoader loader

    PipelineTestHelper helper
    Binding binding
    FakeEnv env
    Map<String, Object> params
    FakeRun currentBuild
    private final Map<String, Script> loaded = [:]

    @Before
    void setUp() throws Exception {
        loaded.clear()
        helper = new PipelineTestHelper()
        binding = new Binding()
        helper.binding = binding
        helper.libraryRoot = libraryRoot()
        env = new FakeEnv([
            BUILD_NUMBER: '42', BUILD_URL: 'http://jenkins.example/job/team/42/', JOB_NAME: 'team/churn',
            BRANCH_NAME: 'main', PATH: '/usr/local/bin:/usr/bin:/bin', WORKSPACE: '/ws/team',
        ])
        params = [:]
        currentBuild = new FakeRun()
        helper.env = env
        helper.currentBuild = currentBuild
        binding.setVariable('env', env)
        binding.setVariable('params', params)
        binding.setVariable('currentBuild', currentBuild)
        binding.setVariable('scm', [$class: 'GitSCM'])
        binding.setVariable('_', null)
        registerDefaultSteps()
        registerLibrarySteps()
    }

    /** The library checkout: the working directory (run.sh runs from the repository root). */
    static File libraryRoot() {
        return new File(System.getProperty('mlcd.libraryRoot', '.')).canonicalFile
    }

    /** Load a vars/ script (or any pipeline script) with this test's binding; returns the script. */
    Script loadScript(String path) {
        Script s = loaded.get(path)
        if (s != null) {
            return s
        }
        Class cls = compile(new File(helper.libraryRoot, path))
        s = (Script) cls.newInstance()
        s.setBinding(binding)
        s.run()
        loaded.put(path, s)
        return s
    }

    /** Run a step as a pipeline would; returns the exception that ended it (build FAILURE), or null. */
    Throwable runStep(String name, Map args = [:]) {
        try {
            loadScript("vars/${name}.groovy").invokeMethod('call', [args] as Object[])
            return null
        } catch (PipelineAbort e) {
            currentBuild.result = 'FAILURE'
            helper.log << "ERROR: ${e.message}".toString()
            return e
        }
    }

    private static synchronized Class compile(File file) {
        String key = file.canonicalPath
        Class cls = COMPILED.get(key)
        if (cls == null) {
            if (loader == null) {
                CompilerConfiguration cc = new CompilerConfiguration()
                cc.addCompilationCustomizers(new ImportCustomizer().addImports('com.cloudbees.groovy.cps.NonCPS',
                    'org.jenkinsci.plugins.workflow.libs.Library'))
                loader = new GroovyClassLoader(BasePipelineTest.classLoader, cc)
            }
            cls = loader.parseClass(file)
            COMPILED.put(key, cls)
        }
        return cls
    }

    protected void registerLibrarySteps() {
        File vars = new File(helper.libraryRoot, 'vars')
        vars.listFiles()?.findAll { File f -> f.name.endsWith('.groovy') }?.each { File f ->
            String name = f.name - '.groovy'
            String path = "vars/${f.name}"
            helper.registerAllowedMethod(name) { Object[] a ->
                loadScript(path).invokeMethod('call', a)
            }
        }
    }

    // ---- default fakes of Jenkins steps ----------------------------------------------------------

    @SuppressWarnings('MethodSize')
    protected void registerDefaultSteps() {
        PipelineTestHelper h = helper
        h.registerAllowedMethod('echo', [String]) { String m -> h.log << m }
        h.registerAllowedMethod('error', [String]) { String m -> throw new PipelineAbort(m) }
        h.registerAllowedMethod('unstable', [String]) { String m ->
            currentBuild.result = 'UNSTABLE'
            h.log << "WARNING: ${m}".toString()
        }
        h.registerAllowedMethod('unstable', [Map]) { Map m ->
            currentBuild.result = 'UNSTABLE'
            h.log << "WARNING: ${m.message}".toString()
        }
        h.registerAllowedMethod('sh', [String]) { String s -> runSh([script: s]) }
        h.registerAllowedMethod('sh', [Map]) { Map m -> runSh(m) }
        h.registerAllowedMethod('stage', [String, Closure]) { String name, Closure c ->
            h.stages << name
            c.call()
        }
        h.registerAllowedMethod('node', [String, Closure]) { String label, Closure c -> onNode(label, c, false) }
        h.registerAllowedMethod('node', [Closure]) { Closure c -> onNode('', c, false) }
        // workflow-basic-steps TimeoutStep.java: time + unit (default MINUTES); the harness clock is simulated
        h.registerAllowedMethod('timeout', [Map, Closure]) { Map m, Closure c -> h.withTimeout(toMinutes(m), c) }
        h.registerAllowedMethod('timeout', [Integer, Closure]) { Integer t, Closure c -> h.withTimeout(t, c) }
        // lockable-resources LockStep.java: one build here, so a lock is always free and just runs its body;
        // the order lock-then-node is checked by the tests through the call stack
        h.registerAllowedMethod('lock', [String, Closure], null)
        h.registerAllowedMethod('lock', [Map, Closure], null)
        h.registerAllowedMethod('script', [Closure], null)
        h.registerAllowedMethod('dir', [String, Closure]) { String d, Closure c ->
            String saved = h.dirPrefix
            h.dirPrefix = h.resolve(d)
            try {
                return c.call()
            } finally {
                h.dirPrefix = saved
            }
        }
        h.registerAllowedMethod('retry', [Integer, Closure], null)
        // pipeline-milestone-step: only matters between concurrent builds, which a test does not run
        h.registerAllowedMethod('milestone', { Object[] a -> null })
        h.registerAllowedMethod('stash', [Map]) { Map m -> h.stash(m) }
        h.registerAllowedMethod('stash', [String]) { String n -> h.stash([name: n]) }
        h.registerAllowedMethod('unstash', [String]) { String n -> h.unstash(n) }
        h.registerAllowedMethod('unstash', [Map]) { Map m -> h.unstash(m.name as String) }
        h.registerAllowedMethod('deleteDir', { Object[] a -> h.deleteDir() })
        h.registerAllowedMethod('sleep', { Object[] a -> null })
        h.registerAllowedMethod('archiveArtifacts', { Object[] a -> null })
        h.registerAllowedMethod('checkout', [Object]) { Object scm -> h.checkout() }
        h.registerAllowedMethod('isUnix', { Object[] a -> true })
        // workflow-durable-task-step PwdStep.java: tmp: true is the workspace's sibling '<workspace>@tmp'
        h.registerAllowedMethod('pwd', { Object[] a -> h.workspacePath(env.WORKSPACE) })
        h.registerAllowedMethod('pwd', [Map]) { Map m ->
            String ws = h.workspacePath(env.WORKSPACE)
            return m.tmp ? "${ws}@tmp".toString() : ws
        }
        // pipeline-model-definition BuildingTagConditional.java: a `when` condition only. Called as a step
        // (inside script {}), workflow-cps DSL.java resolves the @Symbol to an UninstantiatedDescribable:
        // an object, always truthy, never the answer.
        h.registerAllowedMethod('buildingTag', { Object[] a -> [symbol: 'buildingTag', $class: 'UninstantiatedDescribable'] })
        h.registerAllowedMethod('string', [Map]) { Map m -> [$class: 'StringBinding'] + m }
        h.registerAllowedMethod('usernamePassword', [Map]) { Map m -> [$class: 'UsernamePasswordMultiBinding'] + m }
        h.registerAllowedMethod('withCredentials', [List, Closure]) { List bindings, Closure c ->
            withCredentials(bindings, c)
        }
        h.registerAllowedMethod('withEnv', [List, Closure]) { List pairs, Closure c -> withEnv(pairs, c) }
        h.registerAllowedMethod('catchError', [Map, Closure]) { Map m, Closure c -> catchError(m, c) }
        h.registerAllowedMethod('catchError', [Closure]) { Closure c -> catchError([:], c) }
        h.registerAllowedMethod('warnError', [String, Closure]) { String msg, Closure c ->
            catchError([message: msg, buildResult: 'UNSTABLE', stageResult: 'UNSTABLE'], c)
        }
        h.registerAllowedMethod('input', [Map]) { Map m -> input(m) }
        h.registerAllowedMethod('junit', [String]) { String p -> junit([testResults: p]) }
        h.registerAllowedMethod('junit', [Map]) { Map m -> junit(m) }
        h.registerAllowedMethod('readJSON', [Map]) { Map m ->
            String text = m.text != null ? m.text as String : h.readText(m.file as String)
            return JsonLib.read(text, m.returnPojo == true)
        }
        h.registerAllowedMethod('readYaml', [Map]) { Map m -> readYaml(m) }
        h.registerAllowedMethod('writeFile', [Map]) { Map m -> h.writeText(m.file as String, m.text as String) }
        h.registerAllowedMethod('readFile', [String]) { String f -> h.readText(f) }
        h.registerAllowedMethod('readFile', [Map]) { Map m -> h.readText(m.file as String) }
        h.registerAllowedMethod('readTrusted', [String]) { String f ->
            String current = h.readText(f)
            if (h.trustedFiles.containsKey(f) && h.trustedFiles[f] != current) {
                throw new PipelineAbort("${f} has been modified in an untrusted revision")
            }
            return current
        }
        h.registerAllowedMethod('fileExists', [String]) { String f -> h.fileExists(f) }
        h.registerAllowedMethod('fileExists', [Map]) { Map m -> h.fileExists(m.file as String) }
        h.registerAllowedMethod('libraryResource', [String]) { String p ->
            new File(h.libraryRoot, "resources/${p}").getText('UTF-8')
        }
        h.registerAllowedMethod('pipeline', [Closure]) { Closure c ->
            new DeclarativePipeline(h, c.owner, this).run(c)
        }
    }

    /**
     * durable-task BourneShellScript.java: with returnStdout the script's stdout is the value and only its
     * stderr (where `sh -xe` writes the trace) reaches the console; otherwise both do. A non-zero exit
     * without returnStatus is an AbortException "script returned exit code N".
     */
    protected Object runSh(Map m) {
        String script = m.script as String
        Map r = helper.runSh(script, m.returnStdout == true)
        String out = r.stdout as String
        String err = r.stderr as String
        int code = r.exitValue as int
        if (err) {
            helper.log << err
        }
        if (out && !m.returnStdout) {
            helper.log << out
        }
        if (m.returnStatus) {
            return code
        }
        if (code != 0) {
            throw new PipelineAbort("script returned exit code ${code}")
        }
        return m.returnStdout ? out : null
    }

    /**
     * A node allocation (workflow-durable-task-step ExecutorStepExecution.java): a workspace of its own,
     * WORKSPACE and NODE_NAME set inside. `checkout`: a declarative agent, which checks out scm first
     * (pipeline-model-definition CheckoutScript.groovy).
     */
    protected Object onNode(String label, Closure c, boolean checkout) {
        Map<String, String> saved = new LinkedHashMap<String, String>(env)
        Map ws = helper.enterWorkspace()
        env.NODE_NAME = label ?: 'built-in'
        env.WORKSPACE = helper.workspacePath(env.WORKSPACE)
        try {
            if (checkout) {
                helper.invoke('checkout', [helper.binding.getVariable('scm')] as Object[])
            }
            return c.call()
        } finally {
            helper.leaveWorkspace(ws)
            restoreEnv(saved, ['NODE_NAME', 'WORKSPACE'])
        }
    }

    static double toMinutes(Map m) {
        double t = (m.time as Number).doubleValue()
        switch ((m.unit ?: 'MINUTES') as String) {
            case 'SECONDS': return t / 60
            case 'HOURS': return t * 60
            case 'DAYS': return t * 1440
            default: return t
        }
    }

    /**
     * workflow-basic-steps CatchErrorStep.java: any exception is caught, an interruption
     * (FlowInterruptedException: abort, timeout) too unless catchInterruptions: false; the build result
     * becomes buildResult (default FAILURE), the stage's stageResult; the message is printed.
     */
    protected Object catchError(Map m, Closure c) {
        try {
            return c.call()
        } catch (FlowInterruptedException e) {
            if (m.catchInterruptions == false) {
                throw e
            }
            helper.log << (m.message ?: "Caught interruption: ${e.causes.join(', ')}".toString())
            currentBuild.result = (m.buildResult ?: 'FAILURE') as String
        } catch (Throwable e) {
            helper.log << (m.message ?: "ERROR: ${e.message}".toString())
            currentBuild.result = (m.buildResult ?: 'FAILURE') as String
        }
        return null
    }

    /** Undo a block's bindings only: global `env.X = ...` assignments made inside it persist, as in Jenkins. */
    protected void restoreEnv(Map<String, String> saved, Collection<String> keys) {
        keys.each { String k ->
            if (saved.containsKey(k)) {
                env.put(k, saved[k])
            } else {
                env.remove(k)
            }
        }
    }

    protected Object withEnv(List pairs, Closure c) {
        Map<String, String> saved = new LinkedHashMap<String, String>(env)
        List<String> keys = []
        pairs.each { Object p ->
            String s = p as String
            int eq = s.indexOf('=')
            String k = s.substring(0, eq)
            String v = s.substring(eq + 1)
            int plus = k.indexOf('+')
            if (plus > 0) {
                String base = k.substring(0, plus)
                env.put(base, env.get(base) ? "${v}:${env.get(base)}".toString() : v)
                keys << base
            } else {
                env.put(k, v)
                keys << k
            }
        }
        try {
            return c.call()
        } finally {
            restoreEnv(saved, keys)
        }
    }

    /**
     * credentials-binding BindingStep.java: each binding takes a credential of its type (StringBinding:
     * Secret text; UsernamePasswordMultiBinding: Username with password), else the step fails with
     * "Credentials 'ID' is of type '...' where '...' was expected" (MultiBinding.getCredentials); the
     * values are set in the environment and masked in the console log inside the block only.
     */
    protected Object withCredentials(List bindings, Closure c) {
        Map<String, String> saved = new LinkedHashMap<String, String>(env)
        List<String> keys = []
        List<String> secrets = []
        bindings.each { Object b ->
            Map m = b as Map
            String id = m.credentialsId as String
            if (!helper.credentials.containsKey(id)) {
                throw new PipelineAbort("Could not find credentials entry with ID '${id}'")
            }
            Object secret = helper.credentials[id]
            boolean isText = !(secret instanceof Map)
            String type = isText ? 'Secret text' : 'Username with password'
            if (m.$class == 'StringBinding') {
                if (!isText) {
                    throw new PipelineAbort("Credentials '${id}' is of type '${type}' where " +
                        "'org.jenkinsci.plugins.plaincredentials.StringCredentials' was expected")
                }
                env.put(m.variable as String, secret as String)
                keys << (m.variable as String)
                secrets << (secret as String)
            } else {
                if (isText) {
                    throw new PipelineAbort("Credentials '${id}' is of type '${type}' where " +
                        "'com.cloudbees.plugins.credentials.common.StandardUsernamePasswordCredentials' was expected")
                }
                Map up = secret as Map
                env.put(m.usernameVariable as String, up.username as String)
                env.put(m.passwordVariable as String, up.password as String)
                keys << (m.usernameVariable as String) << (m.passwordVariable as String)
                secrets << (up.password as String) << (up.username as String)
            }
        }
        helper.log.masks.add(secrets)
        try {
            return c.call()
        } finally {
            helper.log.masks.remove(secrets)
            restoreEnv(saved, keys)
        }
    }

    protected Object input(Map m) {
        helper.spend(helper.inputMinutes)
        if (helper.inputResponder != null) {
            return helper.inputResponder.call(m)
        }
        String approver = 'approver'
        List parameters = (m.parameters ?: []) as List
        if (parameters.isEmpty() && !m.submitterParameter) {
            return null
        }
        Map values = [:]
        parameters.each { Object p -> values[(p as Map).name] = (p as Map).defaultValue }
        if (m.submitterParameter) {
            values[m.submitterParameter] = approver
        }
        return values.size() == 1 ? values.values().first() : values
    }

    protected Object readYaml(Map m) {
        if (m.file != null && helper.yamlDocs.containsKey(m.file)) {
            return deepCopy(helper.yamlDocs[m.file])
        }
        String text = m.text != null ? m.text as String : helper.readText(m.file as String)
        if (helper.yamlParser == null) {
            throw new IllegalStateException("test set no yamlDocs entry for ${m.file}")
        }
        return helper.yamlParser.call(text)
    }

    private static Object deepCopy(Object o) {
        if (o instanceof Map) {
            Map out = [:]
            ((Map) o).each { k, v -> out[k] = deepCopy(v) }
            return out
        }
        if (o instanceof List) {
            return ((List) o).collect { Object v -> deepCopy(v) }
        }
        return o
    }

    protected Map junit(Map m) {
        List<String> reports = helper.glob(m.testResults as String)
        if (reports.isEmpty() && !m.allowEmptyResults) {
            throw new PipelineAbort('No test report files were found. Configuration error?')
        }
        int total = 0
        int failed = 0
        reports.each { String path ->
            def xml = new XmlSlurper().parseText(helper.readText(path))
            def cases = xml.name() == 'testcase' ? [xml] : xml.'**'.findAll { it.name() == 'testcase' }
            cases.each { tc ->
                total++
                if (tc.failure.size() > 0 || tc.error.size() > 0) {
                    failed++
                }
            }
        }
        if (failed > 0 && !m.skipMarkingBuildUnstable) {
            currentBuild.result = 'UNSTABLE'
        }
        return [totalCount: total, failCount: failed, passCount: total - failed, skipCount: 0]
    }

    // ---- assertions (JPU names) -----------------------------------------------------------------

    void assertJobStatusSuccess() {
        assert currentBuild.currentResult == 'SUCCESS'
    }

    void assertJobStatusFailure() {
        assert currentBuild.currentResult == 'FAILURE'
    }

    void assertJobStatusUnstable() {
        assert currentBuild.currentResult == 'UNSTABLE'
    }
}
