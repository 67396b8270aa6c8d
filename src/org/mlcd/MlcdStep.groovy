package org.mlcd

/**
 * The frame the steps share: argument checks (checkArgs, every step); for a step that runs one `mlcd`
 * command, mlcd.yaml, the target environment and its credentials id (begin), the command with its
 * reports published (execute), the one-line failure (fail, failNotingRollback). These call pipeline
 * steps, so nothing here is @NonCPS; state is plain Maps.
 */
class MlcdStep implements Serializable {
    private static final long serialVersionUID = 1L

    /**
     * Stop the build, before it does anything, on an unknown key in `args` (naming the closest valid one)
     * or, when `envExample` is given, on a missing `env` (the error shows env: '<envExample>').
     */
    static void checkArgs(Object script, String step, Map args, List<String> keys, String envExample) {
        String problem = StepArgs.unknownKey(step, args, keys)
        if (!problem && envExample) {
            String hint = "the environment name from mlcd.yaml, e.g. env: '${envExample}'"
            problem = StepArgs.missingKey(step, args, [env: hint.toString()])
        }
        if (problem) {
            script.error(problem)
        }
    }

    /**
     * checkArgs, then load mlcd.yaml and find the environment.
     * frame: step (name), args (the step's Map), keys (allowed), envExample (only for steps that require
     * `env`: the example the error shows), node (credentials target without environment: design, artifacts).
     * Returns [step:, config:, cfg:, target: environment summary or null, env: its name or null, credentialsId:,
     * signingIds: the signing key's credentials ids from signingCredentialsId / previousSigningCredentialsId].
     */
    static Map begin(Object script, Map frame) {
        String step = frame.step
        Map args = (Map) frame.args
        checkArgs(script, step, args, (List<String>) frame.keys, frame.envExample as String)
        String config = args.config ?: 'mlcd.yaml'
        Map cfg = MlcdConfig.load(script, config, step)
        Map target = frame.envExample ? MlcdCli.environment(script, cfg, args.env as String, step) : null
        String env = target ? target.name : null
        String credentialsId = args.credentialsId ?: MlcdConfig.defaultCredentialsId(cfg, env ?: frame.node as String)
        Map signingIds = [signing: args.signingCredentialsId, previous: args.previousSigningCredentialsId]
        return [step: step, config: config, cfg: cfg, target: target, env: env, credentialsId: credentialsId,
                signingIds: signingIds]
    }

    /** The binding of the step's API key (its environment's, or the design node's) to the variable mlcd.yaml names. */
    static List nodeKey(Object script, Map step) {
        Map target = (Map) step.target
        String variable = target ? target.apiKeyEnv : ((Map) step.cfg).designKeyEnv
        return MlcdCli.keyBinding(script, step.credentialsId as String, variable)
    }

    /**
     * Run one command for the step (spec: stage, command, vars, credentials; see MlcdCli.run) and publish
     * its JUnit reports and records. The signing key of mlcd.yaml is bound too (every command that writes
     * the audit trail needs it) unless spec.signing is false. Returns MlcdCli.run's Map plus `failed`,
     * the failed test count.
     */
    static Map execute(Object script, Map step, Map spec) {
        List bindings = ((List) (spec.credentials ?: [])) +
            (spec.signing == false ? [] : MlcdCli.signingBindings(script, (Map) step.cfg, (Map) step.signingIds))
        Map run = MlcdCli.run(script, [stage: spec.stage, env: step.env, config: step.config, command: spec.command,
                                       vars: spec.vars, credentials: bindings])
        run.failed = MlcdCli.publish(script, run)
        return run
    }

    /** Stop the build with the step's one-line failure (step, environment, mlcd's message, exit code). */
    static void fail(Object script, Map step, Map run) {
        script.error(MlcdCli.failureMessage(step.step as String, step.env as String, run))
    }

    /**
     * Stop the build after noting in the description what mlcd did to the environment: exit 4,
     * `<env>: <failed>; rolled back to <bundle> (verified)`; exit 5, `<env>: <rollbackFailed>`.
     */
    static void failNotingRollback(Object script, Map step, Map run, String failed, String rollbackFailed) {
        if (run.exitCode == 4) {
            String to = MlcdCli.detail(run, 'rolledBackTo', 'the previous bundle')
            MlcdCli.describe(script, "${step.env}: ${failed}; rolled back to ${to} (verified)")
        } else if (run.exitCode == 5) {
            MlcdCli.describe(script, "${step.env}: ${rollbackFailed}")
        }
        fail(script, step, run)
    }

    /** Stop the build unless the command succeeded. */
    static void failUnlessSuccess(Object script, Map step, Map run) {
        if (run.exitCode != 0) {
            fail(script, step, run)
        }
    }
}
