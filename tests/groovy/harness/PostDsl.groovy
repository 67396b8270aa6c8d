package harness

/** `post {}` blocks by condition. */
class PostDsl {
    Map<String, Closure> blocks = [:]

    Object methodMissing(String name, Object args) {
        Object[] a = args as Object[]
        blocks[name] = a[0] as Closure
        return null
    }
}
