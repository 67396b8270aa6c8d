package harness

/** One recorded call of a pipeline step (like JenkinsPipelineUnit's MethodCall). */
class MethodCall {
    String methodName
    Object[] args
    int stackDepth
    /** Snapshot of the environment when the call was made (for sh: which variables were bound). */
    Map<String, String> env = [:]

    String argsToString() {
        return args.collect { Object a -> PipelineTestHelper.render(a) }.join(', ')
    }

    @Override
    String toString() {
        return "${'   ' * stackDepth}${methodName}(${argsToString()})"
    }
}
