package org.mlcd

import com.cloudbees.groovy.cps.NonCPS

/**
 * What the Jenkins steps need from `mlcd.yaml`: the project key, the names of the environment
 * variables that hold API keys, and the ordered environments with their approval, test and smoke
 * settings. The Python CLI validates the whole file; this reads only these fields, into plain
 * (serializable) maps and lists.
 */
class MlcdConfig implements Serializable {
    private static final long serialVersionUID = 1L

    /**
     * Read `path` with readYaml and summarise it; stops the build with a one-line error if unusable.
     * In a pull-request build the file is first replaced by its trusted copy (see useTrustedCopy).
     */
    static Map load(Object script, String path, String step) {
        if (script.env.CHANGE_ID) {
            useTrustedCopy(script, path, step)
        }
        if (!script.fileExists(path)) {
            script.error("${step}: configuration file ${path} not found " +
                "(fix: add mlcd.yaml at the repository root or pass config: 'path/to/mlcd.yaml')")
        }
        Object doc = script.readYaml(file: path)
        String problem = problem(doc, path)
        if (problem != null) {
            script.error("${step}: ${problem}")
        }
        Map cfg = summarize((Map) doc, path)
        String keyFile = approvalPublicKeyFile((Map) doc, path)
        if (script.env.CHANGE_ID && keyFile) {
            // the approval public key decides whose approvals count: a pull request must not choose it either
            useTrustedCopy(script, keyFile, step)
        }
        return cfg
    }

    /**
     * Pull requests must not choose the nodes that receive API keys: read `path` with readTrusted
     * (the target branch's version; it fails when an untrusted pull request changed the file) and
     * write it to the workspace path mlcd reads, before any credentials are bound. Done once per
     * workspace: env.MLCD_TRUSTED_CONFIG remembers the absolute path.
     */
    static void useTrustedCopy(Object script, String path, String step) {
        String where = "${script.pwd()}/${path}".toString()
        if (script.env.MLCD_TRUSTED_CONFIG == where) {
            return
        }
        String text = null
        try {
            text = script.readTrusted(path)
        } catch (err) {
            script.error("${step}: pull request ${script.env.CHANGE_ID} changes ${path}, which decides where " +
                "API keys are sent or whose approvals count; its build cannot use it (${err.message}) " +
                '(fix: a maintainer pushes the change to a branch of the repository, or merges it)')
        }
        script.writeFile(file: path, text: text)
        script.env.MLCD_TRUSTED_CONFIG = where
    }

    /** The first problem that stops the steps from using the document, or null. */
    @NonCPS
    static String problem(Object doc, String path) {
        if (!(doc instanceof Map)) {
            return "${path} is not a YAML mapping (fix: see docs/design.md section 5 for the format)"
        }
        Map m = (Map) doc
        if (!(m.project instanceof String) || !m.project) {
            return "${path}: 'project' (the DSS project key) is missing"
        }
        if (!(m.design instanceof Map) || !((Map) m.design).api_key_env) {
            return "${path}: 'design.api_key_env' is missing"
        }
        if (!(m.environments instanceof List) || ((List) m.environments).isEmpty()) {
            return "${path}: 'environments' must list at least one environment"
        }
        for (Object e : (List) m.environments) {
            if (!(e instanceof Map) || !((Map) e).name || !((Map) e).api_key_env) {
                return "${path}: every environment needs 'name' and 'api_key_env'"
            }
        }
        return null
    }

    /**
     * Plain summary: project, designKeyEnv, artifactRepository (or null), environments, signing (the variable
     * names of `signing:`: keyEnv, previousKeyEnv, approvalKeyEnv, each null when not configured).
     */
    @NonCPS
    static Map summarize(Map doc) {
        return summarize(doc, 'mlcd.yaml')
    }

    /** The same, for mlcd.yaml at `path` in the workspace (repository files are relative to its directory). */
    @NonCPS
    static Map summarize(Map doc, String path) {
        List<Map> envs = []
        for (Object o : (List) doc.environments) {
            Map e = (Map) o
            Object tests = e.containsKey('tests') ? e.tests : true
            Object smoke = e.smoke
            boolean hasSmoke = smoke instanceof String ? !((String) smoke).isEmpty() :
                (smoke instanceof List && !((List) smoke).isEmpty())
            envs << [
                name: String.valueOf(e.name),
                apiKeyEnv: String.valueOf(e.api_key_env),
                approval: e.approval == true,
                tests: tests != false && tests != null,
                smoke: hasSmoke,
                rollbackOnFailure: e.rollback_on_failure != false,
            ]
        }
        Map repo = null
        if (doc.artifact_repository instanceof Map) {
            Map r = (Map) doc.artifact_repository
            repo = [
                usernameEnv: r.username_env ? String.valueOf(r.username_env) : null,
                passwordEnv: r.password_env ? String.valueOf(r.password_env) : null,
                tokenEnv: r.token_env ? String.valueOf(r.token_env) : null,
            ]
        }
        return [
            project: String.valueOf(doc.project),
            designKeyEnv: String.valueOf(((Map) doc.design).api_key_env),
            artifactRepository: repo,
            environments: envs,
            repositoryFiles: repositoryFiles(doc, path),
            signing: signing(doc.signing),
        ]
    }

    /** The environment variable names of mlcd.yaml's `signing` section (python/mlcd/config.py SigningConfig). */
    @NonCPS
    static Map signing(Object section) {
        Map s = section instanceof Map ? (Map) section : [:]
        return [
            keyEnv: s.key_env ? String.valueOf(s.key_env) : null,
            previousKeyEnv: s.previous_key_env ? String.valueOf(s.previous_key_env) : null,
            approvalKeyEnv: s.approval_key_env ? String.valueOf(s.approval_key_env) : null,
        ]
    }

    /**
     * Repository-relative files mlcd.yaml points to (`tls.ca_bundle` of the design node, the artifact
     * repository and each environment; `signing.approval_public_key_file`, relative to mlcd.yaml's
     * directory): a stage on another agent has no checkout, so they travel with the .mlcd state
     * (mlcdPipeline stashes them). `configPath` is mlcd.yaml's path in the workspace.
     */
    @NonCPS
    static List<String> repositoryFiles(Map doc, String configPath) {
        List<Object> holders = [doc.design, doc.artifact_repository] + (List) doc.environments
        List<String> files = []
        for (Object h : holders) {
            Object tls = h instanceof Map ? ((Map) h).tls : null
            Object bundle = tls instanceof Map ? ((Map) tls).ca_bundle : null
            String path = bundle ? String.valueOf(bundle) : null
            if (path && !path.startsWith('/') && !files.contains(path)) {
                files << path
            }
        }
        String keyFile = approvalPublicKeyFile(doc, configPath)
        if (keyFile && !files.contains(keyFile)) {
            files << keyFile
        }
        return files
    }

    /** `signing.approval_public_key_file` as a workspace path (it is relative to mlcd.yaml's directory), or null. */
    @NonCPS
    static String approvalPublicKeyFile(Map doc, String configPath) {
        Object value = doc.signing instanceof Map ? ((Map) doc.signing).approval_public_key_file : null
        String file = value ? String.valueOf(value) : null
        if (!file || file.startsWith('/')) {
            return null
        }
        int slash = configPath.lastIndexOf('/')
        return slash >= 0 ? configPath.substring(0, slash + 1) + file : file
    }

    /** The summary of environment `name`, or null. */
    @NonCPS
    static Map environment(Map cfg, String name) {
        for (Object e : (List) cfg.environments) {
            if (((Map) e).name == name) {
                return (Map) e
            }
        }
        return null
    }

    /** Names of the environments, in order. */
    @NonCPS
    static List<String> environmentNames(Map cfg) {
        List<String> names = []
        for (Object e : (List) cfg.environments) {
            names << String.valueOf(((Map) e).name)
        }
        return names
    }

    /** The credentials id used when none is given: `mlcd-<project>-<environment or design>`, lower case. */
    @NonCPS
    static String defaultCredentialsId(Map cfg, String target) {
        return "mlcd-${cfg.project}-${target}".toLowerCase()
    }

    /** The name of the lockable resource guarding an environment: `mlcd-<project>-<env>`. */
    @NonCPS
    static String lockName(Map cfg, String env) {
        return "mlcd-${cfg.project}-${env}"
    }
}
