package harness

import groovy.json.JsonOutput
import java.util.regex.Pattern
import org.jenkinsci.plugins.workflow.steps.FlowInterruptedException

/**
 * The registry of allowed pipeline steps, the recorded call stack and the `sh` fakes.
 * Follows JenkinsPipelineUnit's names (registerAllowedMethod, addShMock, callStack,
 * callArgsToString) so that tests can move to JPU mechanically.
 */
class PipelineTestHelper {
    final List<MethodCall> callStack = []
    /** Names of the stages that ran, in order (declarative and scripted). */
    final List<String> stages = []
    /** Names of declarative stages skipped by `when` or after a failure. */
    final List<String> skippedStages = []
    /** Lines the build printed (echo, sh output and -x trace, error messages), masked like Jenkins. */
    final ConsoleLog log = new ConsoleLog()
    /** Declarative `options {}` entries of the pipeline, as calls. */
    final List<MethodCall> pipelineOptions = []
    /**
     * Files of the current fake workspace (path relative to the workspace -> text) when no real workspace
     * is set. Each `node` allocation gets a workspace of its own (workflow-durable-task-step
     * ExecutorStepExecution.java): only checkout, stash/unstash carry files across.
     */
    Map<String, String> files = [:]
    /** What `checkout scm` puts in a workspace: a snapshot of `files` (or `workspace`) at the first node. */
    Map<String, String> scmFiles = null
    File scmDir = null
    /** End-to-end mode: makes a fresh real directory for each node allocation. */
    Closure<File> newRealWorkspace = null
    /** Every workspace allocated, in order (fake maps or real directories), for inspection after a run. */
    final List<Object> workspaces = []
    /** Variables the Git checkout of a declarative agent sets, around that stage only (CheckoutScript.groovy). */
    Map<String, String> scmVars = [GIT_BRANCH: 'origin/main', GIT_COMMIT: '0123456789abcdef0123456789abcdef01234567']
    /** Saved stashes: name -> [path -> bytes] (workflow-api StashManager.java). */
    final Map<String, Map<String, byte[]>> stashes = [:]
    /** `dir()` nesting inside the workspace ('' at its root). */
    String dirPrefix = ''
    /** Result of the previous build of the job, for changed/fixed/regression (null: first build). */
    String previousResult = null
    /** Restart the pipeline from this top-level stage (pipeline-model-definition RestartDeclarativePipelineAction). */
    String restartFromStage = null
    /** Minutes of simulated time since the build started; `sh` fakes and `input` spend it. */
    double minutes = 0
    /** Active `timeout` blocks, outermost first: [deadline:, fired:, firedAt:]. */
    final List<Map> timeouts = []
    /** Simulated minutes a matching `sh` takes: [match: closure(script), minutes:]. */
    final List<Map> shDurations = []
    /** Simulated minutes a person takes to answer `input`. */
    double inputMinutes = 0
    /** readTrusted: path -> the target branch's text; a workspace file that differs makes readTrusted fail. */
    final Map<String, String> trustedFiles = [:]
    /** Credentials store: id -> secret string, or [username: .., password: ..]. */
    final Map<String, Object> credentials = [:]
    /** Real workspace directory (end-to-end mode); null in unit tests. */
    File workspace = null
    /** Root of the library under test: vars/, src/, resources/. */
    File libraryRoot = new File('.')
    /** How `readYaml` parses text (unit tests pass maps through `yamlDocs`). */
    Closure yamlParser = null
    /** Parsed YAML documents by file name, for unit tests. */
    final Map<String, Object> yamlDocs = [:]
    /** What `input` returns: a closure taking the step's Map; default approves as 'approver'. */
    Closure inputResponder = null
    /** Real shell for end-to-end runs: closure(String script, Map env) -> [stdout:, exitValue:]. */
    Closure shExecutor = null
    /** Set by the declarative interpreter when the pipeline ended with an exception. */
    Throwable pipelineFailure = null

    Map<String, String> env
    FakeRun currentBuild
    Binding binding

    private final Map<String, List<Map>> allowedMethods = [:]
    private final List<Map> shMocks = []
    private int depth = 0

    /** Register (or override) a step: `impl` gets the call's arguments; null runs closure arguments. */
    void registerAllowedMethod(String name, List<Class> types, Closure impl) {
        List<Map> impls = allowedMethods.get(name)
        if (impls == null) {
            impls = []
            allowedMethods.put(name, impls)
        }
        impls.removeAll { Map m -> m.types == types }
        impls.add(0, [types: types, impl: impl])
        if (binding != null) {
            bindStep(name)
        }
    }

    /** Register a step whatever its arguments. */
    void registerAllowedMethod(String name, Closure impl) {
        registerAllowedMethod(name, null, impl)
    }

    boolean isAllowed(String name) {
        return allowedMethods.containsKey(name)
    }

    void bindStep(String name) {
        PipelineTestHelper self = this
        binding.setVariable(name, { Object... a -> self.invoke(name, a) })
    }

    /** Call a registered step as a pipeline would: recorded on the call stack, then run. */
    Object invoke(String name, Object[] rawArgs) {
        Object[] args = rawArgs.collect { Object a -> a instanceof GString ? a.toString() : a } as Object[]
        MethodCall call = new MethodCall(methodName: name, args: args, stackDepth: depth)
        if (name == 'sh' || name == 'bat') {
            call.env = new LinkedHashMap<String, String>(env)
        }
        callStack.add(call)
        spend(0)
        Map found = allowedMethods.get(name)?.find { Map m -> matches(m.types as List<Class>, args) }
        if (found == null) {
            throw new MissingMethodException(name, PipelineTestHelper, args)
        }
        depth++
        try {
            Closure impl = found.impl as Closure
            if (impl == null) {
                Object last = args ? args[-1] : null
                return last instanceof Closure ? ((Closure) last).call() : null
            }
            return impl.call(*args)
        } finally {
            depth--
        }
    }

    private static boolean matches(List<Class> types, Object[] args) {
        if (types == null) {
            return true
        }
        if (types.size() != args.length) {
            return false
        }
        for (int i = 0; i < args.length; i++) {
            if (args[i] != null && !types[i].isInstance(args[i])) {
                return false
            }
        }
        return true
    }

    // ---- sh fakes ----------------------------------------------------------------------------

    /** `sh` of exactly this script prints `stdout` and exits with `exitValue`. */
    void addShMock(String script, String stdout, int exitValue) {
        shMocks.add([match: { String s -> s == script }, result: { String s -> [stdout: stdout, exitValue: exitValue] }])
    }

    /** `sh` of a script matching this regex prints `stdout` and exits with `exitValue`. */
    void addShMock(Pattern pattern, String stdout, int exitValue) {
        shMocks.add([match: { String s -> pattern.matcher(s).matches() },
                     result: { String s -> [stdout: stdout, exitValue: exitValue] }])
    }

    /** `sh` of any script: the closure returns [stdout:, exitValue:] or null to fall through. */
    void addShMock(Closure c) {
        shMocks.add([match: { String s -> true }, result: c])
    }

    /** A `sh` whose script matches `pattern` takes `mins` simulated minutes (a timeout around it may fire). */
    void addShDuration(Pattern pattern, double mins) {
        shDurations.add([match: { String s -> pattern.matcher(s).find() }, minutes: mins])
    }

    /**
     * workflow-basic-steps TimeoutStepExecution.java: when the deadline passes, the body is interrupted
     * (FlowInterruptedException, result ABORTED, no message); whatever the body still runs after that
     * (a catch block's steps) is killed once the grace period (GRACE_PERIOD, 60 s) is over.
     * Called at every step start (0 minutes) and by `sh` and `input` with the time they take.
     */
    void spend(double duration) {
        double end = minutes + duration
        Map first = null
        double firstLimit = Double.MAX_VALUE
        for (Map t : timeouts) {
            double limit = t.fired ? (t.firedAt as double) + 1.0d : (t.deadline as double)
            if (end >= limit && limit < firstLimit) {
                first = t
                firstLimit = limit
            }
        }
        if (first == null) {
            minutes = end
            return
        }
        minutes = Math.max(minutes, firstLimit)
        String cause = 'ExceededTimeout'
        if (first.fired) {
            log << 'Body did not finish within grace period; terminating with extreme prejudice'
            cause = 'ExceededTimeout (body killed after the grace period)'
        } else {
            first.fired = true
            first.firedAt = minutes
            log << 'Timeout has been exceeded'
        }
        throw new FlowInterruptedException('ABORTED', [cause])
    }

    /** Run `body` under a timeout of `mins` simulated minutes. */
    Object withTimeout(double mins, Closure body) {
        Map t = [deadline: minutes + mins, fired: false, firedAt: null]
        timeouts.add(t)
        try {
            return body.call()
        } finally {
            timeouts.remove(t)
        }
    }

    /** A `sh` for which `match` (closure of the script; may read `env`) is true takes `mins` simulated minutes. */
    void addShDuration(Closure match, double mins) {
        shDurations.add([match: match, minutes: mins])
    }

    /** The result of running `script`: the last matching fake wins; default prints nothing, exits 0. */
    Map runSh(String script, boolean returnStdout = false) {
        Map duration = shDurations.reverse().find { Map d -> (d.match as Closure).call(script) }
        if (duration != null) {
            spend(duration.minutes as double)
        }
        if (shExecutor != null) {
            return shExecutor.call(script, new LinkedHashMap<String, String>(env), returnStdout) as Map
        }
        for (int i = shMocks.size() - 1; i >= 0; i--) {
            Map mock = shMocks[i]
            if ((mock.match as Closure).call(script)) {
                Map r = (mock.result as Closure).call(script) as Map
                if (r != null) {
                    return [stdout: r.stdout ?: '', exitValue: (r.exitValue ?: 0) as int]
                }
            }
        }
        return [stdout: '', exitValue: 0]
    }

    // ---- files -------------------------------------------------------------------------------

    /** A path as the step sees it: relative to the current `dir()` inside the workspace. */
    String resolve(String path) {
        if (path.startsWith('/') || !dirPrefix) {
            return path
        }
        return "${dirPrefix}/${path}".toString()
    }

    File realFile(String path) {
        File f = new File(path)
        return f.isAbsolute() ? f : new File(workspace, resolve(path))
    }

    boolean fileExists(String path) {
        return workspace != null ? realFile(path).exists() : files.containsKey(resolve(path))
    }

    // ---- workspaces and stashes ----------------------------------------------------------------

    /** Allocate a fresh, empty workspace; returns what to restore afterwards. */
    Map enterWorkspace() {
        Map saved = [files: files, workspace: workspace, dirPrefix: dirPrefix]
        if (scmFiles == null && scmDir == null) {
            if (workspace != null) {
                scmDir = workspace
            } else {
                scmFiles = new LinkedHashMap<String, String>(files)
            }
        }
        dirPrefix = ''
        if (newRealWorkspace != null) {
            workspace = newRealWorkspace.call()
            workspace.mkdirs()
            workspaces << workspace
        } else {
            files = [:]
            workspaces << files
        }
        return saved
    }

    void leaveWorkspace(Map saved) {
        files = saved.files as Map<String, String>
        workspace = saved.workspace as File
        dirPrefix = saved.dirPrefix as String
    }

    /** `checkout scm`: the repository's files into the current workspace. */
    void checkout() {
        if (workspace != null) {
            new AntBuilder().copy(todir: workspace.path) { fileset(dir: scmDir.path) }
        } else {
            files.putAll(scmFiles)
        }
    }

    /** Current workspace path (for pwd and env.WORKSPACE). */
    String workspacePath(String fallback) {
        if (workspace != null) {
            return workspace.absolutePath
        }
        int n = workspaces.indexOf(files)
        return n < 0 ? fallback : "/agents/a${n + 1}/workspace/team".toString()
    }

    /**
     * workflow-basic-steps StashStep.java / workflow-api StashManager.java: the matching files are saved
     * under `name` (replacing an older stash of that name); no file and no allowEmpty is an error.
     */
    void stash(Map m) {
        String name = m.name as String
        List<String> taken = glob((m.includes ?: '**') as String)
        if (m.excludes) {
            taken = taken - glob(m.excludes as String)
        }
        if (taken.isEmpty() && !m.allowEmpty) {
            throw new PipelineAbort("No files included in stash \u2018${name}\u2019")
        }
        Map<String, byte[]> saved = [:]
        taken.each { String p ->
            saved[p] = workspace != null ? new File(workspace, p).bytes : files[p].getBytes('UTF-8')
        }
        stashes[name] = saved
        log << "Stashed ${saved.size()} file(s)".toString()
    }

    /** StashManager.unstash: an unknown name is an AbortException. */
    void unstash(String name) {
        Map<String, byte[]> saved = stashes[name]
        if (saved == null) {
            throw new PipelineAbort("No such saved stash \u2018${name}\u2019")
        }
        saved.each { String p, byte[] b ->
            if (workspace != null) {
                File f = new File(workspace, p)
                f.parentFile.mkdirs()
                f.bytes = b
            } else {
                files[p] = new String(b, 'UTF-8')
            }
        }
    }

    /** deleteDir: the current `dir()` (or the whole workspace) and everything in it. */
    void deleteDir() {
        if (workspace != null) {
            File d = dirPrefix ? new File(workspace, dirPrefix) : workspace
            d.deleteDir()
            return
        }
        if (!dirPrefix) {
            files.clear()
        } else {
            files.keySet().removeAll { String k -> k.startsWith(dirPrefix + '/') }
        }
    }

    String readText(String path) {
        if (workspace != null) {
            File f = realFile(path)
            if (!f.exists()) {
                throw new PipelineAbort("${path} does not exist.")
            }
            return f.getText('UTF-8')
        }
        if (!files.containsKey(resolve(path))) {
            throw new PipelineAbort("${path} does not exist.")
        }
        return files[resolve(path)]
    }

    void writeText(String path, String text) {
        if (workspace != null) {
            File f = realFile(path)
            f.parentFile.mkdirs()
            f.setText(text, 'UTF-8')
        } else {
            files[resolve(path)] = text
        }
    }

    /** Paths (relative to the workspace) matching a comma-separated Ant glob. */
    List<String> glob(String patterns) {
        List<Pattern> regexes = patterns.split(',').collect { String p -> Pattern.compile(antToRegex(p.trim())) }
        Collection<String> candidates
        if (workspace != null) {
            candidates = []
            String root = workspace.canonicalPath
            workspace.eachFileRecurse { File f ->
                if (f.isFile()) {
                    candidates << f.canonicalPath.substring(root.length() + 1)
                }
            }
        } else {
            candidates = files.keySet()
        }
        return candidates.findAll { String c -> regexes.any { Pattern r -> r.matcher(c).matches() } }.sort()
    }

    static String antToRegex(String glob) {
        StringBuilder sb = new StringBuilder()
        int i = 0
        while (i < glob.length()) {
            char ch = glob.charAt(i)
            if (glob.startsWith('**/', i)) {
                sb.append('(?:.*/)?')
                i += 3
                continue
            }
            if (glob.startsWith('**', i)) {
                sb.append('.*')
                i += 2
                continue
            }
            if (ch == '*' as char) {
                sb.append('[^/]*')
            } else if (ch == '?' as char) {
                sb.append('[^/]')
            } else {
                sb.append(Pattern.quote(String.valueOf(ch)))
            }
            i++
        }
        return sb.toString()
    }

    // ---- queries -----------------------------------------------------------------------------

    /** The calls of one step, in order. */
    List<MethodCall> calls(String name) {
        return callStack.findAll { MethodCall c -> c.methodName == name }
    }

    int methodCallCount(String name) {
        return calls(name).size()
    }

    /** Every `sh` script that ran, in order. */
    List<String> shScripts() {
        return calls('sh').collect { MethodCall c -> shScript(c) }
    }

    static String shScript(MethodCall c) {
        Object a = c.args[0]
        return a instanceof Map ? ((Map) a).script as String : a as String
    }

    /** Arguments of a recorded call as a readable string (JPU's callArgsToString). */
    String callArgsToString(MethodCall call) {
        return call.argsToString()
    }

    static String render(Object a) {
        if (a instanceof Closure) {
            return 'groovy.lang.Closure'
        }
        if (a instanceof Map || a instanceof List) {
            return JsonOutput.toJson(stripClosures(a))
        }
        return String.valueOf(a)
    }

    private static Object stripClosures(Object a) {
        if (a instanceof Closure) {
            return 'groovy.lang.Closure'
        }
        if (a instanceof Map) {
            Map out = [:]
            ((Map) a).each { k, v -> out[String.valueOf(k)] = stripClosures(v) }
            return out
        }
        if (a instanceof List) {
            return ((List) a).collect { Object v -> stripClosures(v) }
        }
        if (a instanceof GString) {
            return a.toString()
        }
        return a
    }

    void printCallStack() {
        callStack.each { MethodCall c -> println c }
    }
}
