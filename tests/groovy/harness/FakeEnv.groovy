package harness

/**
 * `env` as Jenkins' EnvActionImpl offers it to a sandboxed library: property access
 * (`env.X`, `env.X = v`, `env.getProperty(name)`, `env.setProperty(name, v)`) works; the
 * subscript operator (`env[name]`, DefaultGroovyMethods getAt/putAt) is rejected by
 * script-security, so it throws here too. The harness itself uses get/put.
 */
class FakeEnv extends LinkedHashMap<String, String> {
    FakeEnv(Map<String, String> initial = [:]) {
        super(initial)
    }

    @Override
    Object getProperty(String name) {
        return get(name)
    }

    /** workflow-cps EnvActionImpl.java setProperty: env.put(name, String.valueOf(value)), so null is stored as "null". */
    @Override
    void setProperty(String name, Object value) {
        put(name, String.valueOf(value))
    }

    String getAt(String name) {
        throw new SandboxRejection('staticMethod org.codehaus.groovy.runtime.DefaultGroovyMethods getAt ' +
            "java.lang.Object java.lang.String (env['${name}'])")
    }

    void putAt(String name, Object value) {
        throw new SandboxRejection('staticMethod org.codehaus.groovy.runtime.DefaultGroovyMethods putAt ' +
            "java.lang.Object java.lang.String java.lang.Object (env['${name}'] = ...)")
    }
}
