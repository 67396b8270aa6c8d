package org.mlcd

import com.cloudbees.groovy.cps.NonCPS

/**
 * Runs one `mlcd` command the way every step does (docs/design.md section 7): arguments only
 * through environment variables, API keys bound with withCredentials to the variable names
 * mlcd.yaml gives, `sh` with returnStatus, then the stage file `.mlcd/<stage>[-<env>].json` read
 * back with readJSON, `junit` on the XML reports and `archiveArtifacts` of the run record, stage
 * files, audit trail and reports (never the bundle archive).
 */
class MlcdCli implements Serializable {
    private static final long serialVersionUID = 1L

    static final String OUT_DIR = '.mlcd'
    /** First line of every `sh` that runs with a secret in its environment: no -x trace of what follows. */
    static final String QUIET = 'set +x\n'
    static final String RUN_RECORD = '.mlcd/run.json'
    static final String ARCHIVE = '.mlcd/*.json, .mlcd/audit.jsonl, .mlcd/reports/**'
    /** The release page every command rewrites (python/mlcd/reports/release_page.py), archived with the reports. */
    static final String RELEASE_PAGE = '.mlcd/reports/index.html'
    static final String UNWIND = 'mlcd unwind --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV" ' +
        '--reason "$MLCD_UNWIND_REASON"'
    static final String UNWIND_KEEP = UNWIND + ' --policy keep'
    static final String APPROVE = 'mlcd approve --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV" ' +
        '--approver "$MLCD_APPROVER" --comment "$MLCD_APPROVAL_COMMENT"'

    /**
     * Run `spec.command` (a constant shell line that reads values from $MLCD_* variables).
     * spec: stage, env (or null), config, command, credentials (bindings list), vars (extra K=V).
     * Returns [exitCode: int, result: stage file content or null, file: stage file path].
     */
    static Map run(Object script, Map spec) {
        List<String> vars = ["MLCD_CONFIG_PATH=${spec.config}".toString()]
        if (spec.env) {
            vars << "MLCD_ENV=${spec.env}".toString()
        }
        for (Object v : (List) (spec.vars ?: [])) {
            vars << String.valueOf(v)
        }
        if (script.env.MLCD_VENV) {
            vars << "PATH+MLCD=${script.env.MLCD_VENV}/bin".toString()
        }
        List bindings = (List) (spec.credentials ?: [])
        int status = 0
        script.withEnv(vars) {
            if (bindings) {
                // Jenkins runs sh with -x: a script with a secret in its environment starts with set +x
                script.withCredentials(bindings) {
                    status = script.sh(script: "${QUIET}${spec.command}".toString(), returnStatus: true)
                }
            } else {
                status = script.sh(script: spec.command, returnStatus: true)
            }
        }
        String file = stageFile(spec.stage as String, spec.env as String)
        Map result = null
        if (script.fileExists(file)) {
            // returnPojo: JSON nulls (bundleId, errorCategory, environment) become Java null, not a truthy JSONNull
            result = (Map) script.readJSON(file: file, returnPojo: true)
        }
        return [exitCode: status, result: result, file: file]
    }

    /**
     * `junit` on the JUnit XML reports the stage file lists in `reports` (only this command's, never an
     * older one left in the workspace) and archive the records; returns the failed test count.
     */
    static int publish(Object script, Map run) {
        int failed = 0
        for (String report : junitReports(run)) {
            Object summary = script.junit(testResults: report, allowEmptyResults: true)
            if (summary != null && summary.failCount) {
                failed += (summary.failCount as int)
            }
        }
        script.archiveArtifacts(artifacts: ARCHIVE, allowEmptyArchive: true, fingerprint: true)
        linkReleasePage(script)
        return failed
    }

    /**
     * Once per build, when mlcd wrote the release page: a link to its archived copy in the build description
     * (kept as a link by the Safe HTML markup formatter; shown as text by the Plain text one).
     */
    static void linkReleasePage(Object script) {
        if (!script.fileExists(RELEASE_PAGE)) {
            return
        }
        String link = releasePageLink(script.env.BUILD_URL as String)
        String old = script.currentBuild.description
        if (!old || !old.contains(link)) {
            describe(script, link)
        }
    }

    /**
     * `<a href="BUILD_URL/artifact/.mlcd/reports/index.html">release page</a>`; without BUILD_URL (no Jenkins
     * URL configured) the link is relative to the build's page.
     */
    @NonCPS
    static String releasePageLink(String buildUrl) {
        String base = buildUrl ? (buildUrl.endsWith('/') ? buildUrl : buildUrl + '/') : ''
        return "<a href=\"${base}artifact/${RELEASE_PAGE}\">release page</a>".toString()
    }

    /** The `.xml` files of the stage file's `reports` field (python/mlcd/commands/runner.py), in order. */
    @NonCPS
    static List<String> junitReports(Map run) {
        Object listed = ((Map) run?.result)?.reports
        List<String> xml = []
        if (listed instanceof List) {
            for (Object r : (List) listed) {
                String path = String.valueOf(r)
                if (path.endsWith('.xml')) {
                    xml << path
                }
            }
        }
        return xml
    }

    /** The summary of environment `name` in `cfg`; stops the build naming the valid ones if absent. */
    static Map environment(Object script, Map cfg, String name, String step) {
        Map e = MlcdConfig.environment(cfg, name)
        if (e == null) {
            script.error("${step}: environment '${name}' is not in mlcd.yaml " +
                "(fix: use one of ${MlcdConfig.environmentNames(cfg).join(', ')})")
        }
        return e
    }

    /** The binding of one environment's (or the design node's) API key to the variable mlcd.yaml names. */
    static List keyBinding(Object script, String credentialsId, String variable) {
        return [script.string(credentialsId: credentialsId, variable: variable)]
    }

    /** Bindings for the artifact repository's credentials (if an id is given and mlcd.yaml names variables). */
    static List artifactBindings(Object script, Map cfg, String credentialsId) {
        Map repo = (Map) cfg.artifactRepository
        if (!credentialsId || repo == null) {
            return []
        }
        if (repo.tokenEnv) {
            return [script.string(credentialsId: credentialsId, variable: repo.tokenEnv)]
        }
        if (repo.usernameEnv && repo.passwordEnv) {
            return [script.usernamePassword(credentialsId: credentialsId,
                usernameVariable: repo.usernameEnv, passwordVariable: repo.passwordEnv)]
        }
        return []
    }

    /**
     * The bindings of the signing key (and, during a rotation, the previous one) to the variables mlcd.yaml's
     * `signing:` names (python/mlcd/signing.py): every command that writes or verifies the audit trail or
     * bundle metadata needs them. None when mlcd.yaml configures no signing key.
     * ids: [signing: credentials id or null, previous: credentials id or null]; defaults
     * mlcd-<project>-signing and mlcd-<project>-signing-previous (Secret text).
     */
    static List signingBindings(Object script, Map cfg, Map ids) {
        Map names = (Map) (cfg.signing ?: [:])
        List bindings = []
        if (names.keyEnv) {
            String id = ids?.signing ?: MlcdConfig.defaultCredentialsId(cfg, 'signing')
            bindings << script.string(credentialsId: id, variable: names.keyEnv)
        }
        if (names.keyEnv && names.previousKeyEnv) {
            String id = ids?.previous ?: MlcdConfig.defaultCredentialsId(cfg, 'signing-previous')
            bindings << script.string(credentialsId: id, variable: names.previousKeyEnv)
        }
        return bindings
    }

    /**
     * The binding of the approval private key (`signing.approval_key_env`, default credentials id
     * mlcd-<project>-approval, Secret text); bound only around `mlcd approve`. None when not configured.
     */
    static List approvalBindings(Object script, Map cfg, String credentialsId) {
        String variable = ((Map) (cfg.signing ?: [:])).approvalKeyEnv
        if (!variable) {
            return []
        }
        String id = credentialsId ?: MlcdConfig.defaultCredentialsId(cfg, 'approval')
        return [script.string(credentialsId: id, variable: variable)]
    }

    /**
     * Record an approval in the run record and audit trail (`mlcd approve`, which signs it with the approval
     * key when mlcd.yaml configures one); stops the build if it fails. The approval key is bound here only.
     * approval: [step:, config:, cfg: (mlcd.yaml summary), env:, approver:, comment:, signingIds: (see
     * signingBindings), approvalCredentialsId:]
     */
    static void recordApproval(Object script, Map approval) {
        Map cfg = (Map) approval.cfg
        List bindings = signingBindings(script, cfg, (Map) approval.signingIds) +
            approvalBindings(script, cfg, approval.approvalCredentialsId as String)
        Map run = run(script, [stage: 'approve', env: approval.env, config: approval.config, command: APPROVE,
                               vars: ["MLCD_APPROVER=${approval.approver}".toString(),
                                      "MLCD_APPROVAL_COMMENT=${approval.comment ?: ''}".toString()],
                               credentials: bindings])
        publish(script, run)
        if (run.exitCode != 0) {
            script.error(failureMessage(approval.step as String, approval.env as String, run))
        }
    }

    /**
     * `mlcd unwind` for an environment this build changed before a later one failed: mlcd decides whether it
     * is rolled back or kept. Notes a rollback in the build description, echoes any other end, and stops the
     * build when the rollback failed (exit 5) or the command failed.
     * unwind: [step:, config:, env:, reason:, keep: (override the policy with keep), credentials: bindings]
     */
    static void unwind(Object script, Map unwind) {
        String env = unwind.env
        Map run = run(script, [stage: 'unwind', env: env, config: unwind.config,
                               command: unwind.keep ? UNWIND_KEEP : UNWIND,
                               vars: ["MLCD_UNWIND_REASON=${unwind.reason}".toString()],
                               credentials: unwind.credentials])
        publish(script, run)
        Map result = (Map) run.result
        if (run.exitCode == 0 && result?.outcome == 'ROLLED_BACK') {
            describe(script, "${env}: rolled back to ${detail(run, 'rolledBackTo', 'the previous bundle')} (verified)")
        } else if (run.exitCode == 0) {
            script.echo("${unwind.step}: ${env}: ${result?.outcome}: ${result?.message}")
        } else {
            if (run.exitCode == 5) {
                describe(script, "${env}: ROLLBACK FAILED, a person must act")
            }
            script.error(failureMessage(unwind.step as String, env, run))
        }
    }

    /** Name of the build-wide variable holding an approval not yet recorded (no agent was available). */
    @NonCPS
    static String pendingApprovalVar(String env) {
        return 'MLCD_APPROVAL_PENDING_' + env.toUpperCase().replaceAll('[^A-Z0-9]', '_')
    }

    /** Append one line to the build description (shown on the build page and in the job's history). */
    static void describe(Object script, String line) {
        String old = script.currentBuild.description
        script.currentBuild.description = old ? "${old}\n${line}".toString() : line
    }

    /** A value of the stage file's `details` (e.g. rolledBackTo, to), or `fallback`. */
    @NonCPS
    static String detail(Map run, String key, String fallback) {
        Object details = ((Map) run.result)?.details
        Object value = details instanceof Map ? ((Map) details).get(key) : null
        return value ? String.valueOf(value) : fallback
    }

    /** `.mlcd/<stage>.json` or `.mlcd/<stage>-<env>.json`. */
    @NonCPS
    static String stageFile(String stage, String env) {
        return env ? "${OUT_DIR}/${stage}-${env}.json".toString() : "${OUT_DIR}/${stage}.json".toString()
    }

    /** One line: step, environment, the CLI's message and what its exit code means. */
    @NonCPS
    static String failureMessage(String step, String env, Map run) {
        int code = run.exitCode as int
        Map result = (Map) run.result
        String message = result?.message ? String.valueOf(result.message) :
            "mlcd wrote no ${run.file}; see the mlcd output above"
        String where = env ? "${env}: " : ''
        return "${step}: ${where}${message} (mlcd exit code ${code}: ${exitMeaning(code)})"
    }

    /** The documented meaning of an mlcd exit code (python/mlcd/errors.py). */
    @NonCPS
    static String exitMeaning(int code) {
        switch (code) {
            case 0: return 'success'
            case 1: return 'internal error in mlcd, run again with --debug and report it'
            case 2: return 'bad input: command line, mlcd.yaml, archive or a missing environment variable'
            case 3: return 'quality gate failed'
            case 4: return 'deployment failed after activation and was rolled back, verified'
            case 5: return 'rollback failed or state unverified: a person must act'
            case 6: return 'node unreachable, TLS failure, or API key refused'
            case 7: return 'nothing to roll back to'
            case 8: return 'DSS refused a step before activation; the environment is unchanged'
            case 9: return 'another deploy holds the environment lock past the timeout'
            case 127: return 'mlcd not found: run mlcdSetup first'
            default: return 'unexpected exit code'
        }
    }
}
