package harness

import groovy.json.JsonOutput
import java.util.regex.Pattern

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
    /** Lines the build printed (echo, sh stdout, error messages). */
    final List<String> log = []
    /** Declarative `options {}` entries of the pipeline, as calls. */
    final List<MethodCall> pipelineOptions = []
    /** Files of the fake workspace (path relative to the workspace -> text) when no real workspace is set. */
    final Map<String, String> files = [:]
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

    /** The result of running `script`: the last matching fake wins; default prints nothing, exits 0. */
    Map runSh(String script) {
        if (shExecutor != null) {
            return shExecutor.call(script, new LinkedHashMap<String, String>(env)) as Map
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

    File realFile(String path) {
        File f = new File(path)
        return f.isAbsolute() ? f : new File(workspace, path)
    }

    boolean fileExists(String path) {
        return workspace != null ? realFile(path).exists() : files.containsKey(path)
    }

    String readText(String path) {
        if (workspace != null) {
            File f = realFile(path)
            if (!f.exists()) {
                throw new PipelineAbort("${path} does not exist.")
            }
            return f.getText('UTF-8')
        }
        if (!files.containsKey(path)) {
            throw new PipelineAbort("${path} does not exist.")
        }
        return files[path]
    }

    void writeText(String path, String text) {
        if (workspace != null) {
            File f = realFile(path)
            f.parentFile.mkdirs()
            f.setText(text, 'UTF-8')
        } else {
            files[path] = text
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
