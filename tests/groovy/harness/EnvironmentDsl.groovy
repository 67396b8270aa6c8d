package harness

/** `environment { NAME = 'value' }`. */
class EnvironmentDsl {
    Map<String, Object> vars = [:]

    void propertyMissing(String name, Object value) {
        vars[name] = value
    }
}
