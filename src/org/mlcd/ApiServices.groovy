package org.mlcd

import com.cloudbees.groovy.cps.NonCPS

/**
 * What mlcdApiDeploy needs from `api_services` in mlcd.yaml: the names of the variables holding the API
 * Deployer's key (api_services.deployer, else the design node's) and the service's prediction key. The
 * Python CLI validates the section; this only finds the names, in plain maps.
 */
class ApiServices implements Serializable {
    private static final long serialVersionUID = 1L

    /** [deployerKeyEnv:, serviceKeyEnv: (or null)], or [problem: one line] when the service is not configured. */
    @NonCPS
    static Map keyEnvs(Object doc, String service) {
        Map m = doc instanceof Map ? (Map) doc : [:]
        Map section = m.api_services instanceof Map ? (Map) m.api_services : null
        if (section == null) {
            return [problem: "mlcd.yaml has no api_services (fix: add it, see docs/configuration.md)"]
        }
        Map deployer = section.deployer instanceof Map ? (Map) section.deployer : (Map) m.design
        List known = []
        for (Object o : (section.services instanceof List ? (List) section.services : [])) {
            Map s = o instanceof Map ? (Map) o : [:]
            known << String.valueOf(s.id)
            if (String.valueOf(s.id) == service) {
                return [deployerKeyEnv: String.valueOf(deployer?.api_key_env),
                        serviceKeyEnv: s.api_key_env ? String.valueOf(s.api_key_env) : null]
            }
        }
        return [problem: "API service '${service}' is not in api_services of mlcd.yaml " +
            "(fix: use one of ${known.join(', ')})".toString()]
    }
}
