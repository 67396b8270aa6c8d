package harness

/** The delegate of `steps {}`: every call and property goes to the script (like Jenkins' CPS script). */
class StepsForwarder {
    final Object target

    StepsForwarder(Object target) {
        this.target = target
    }

    Object methodMissing(String name, Object args) {
        return target.invokeMethod(name, args)
    }

    Object propertyMissing(String name) {
        return target.getProperty(name)
    }

    void propertyMissing(String name, Object value) {
        target.setProperty(name, value)
    }
}
