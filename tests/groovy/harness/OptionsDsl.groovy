package harness

/** `options {}`: every word is recorded as a call. */
class OptionsDsl {
    List<MethodCall> calls = []

    Object methodMissing(String name, Object args) {
        Object[] a = args as Object[]
        calls << new MethodCall(methodName: name, args: a, stackDepth: 0)
        return [option: name, args: a.toList()]
    }
}
