import groovy.transform.Field
import org.mlcd.MlcdCli
import org.mlcd.MlcdConfig
import org.mlcd.StepArgs

@Field static final String STEP = 'mlcdRollback'
@Field static final List<String> KEYS = ['env', 'config', 'credentialsId', 'to', 'reason']
@Field static final String COMMAND = 'mlcd rollback --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV" ' +
    '--reason "$MLCD_ROLLBACK_REASON"'
@Field static final String COMMAND_TO = 'mlcd rollback --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV" ' +
    '--reason "$MLCD_ROLLBACK_REASON" --to "$MLCD_ROLLBACK_TO"'

/**
 * Re-activate the previous (or a named) bundle on an environment, verify it and re-run smoke.
 * A verified rollback is noted in the build description; nothing to roll back to makes the build
 * UNSTABLE; a failed rollback fails the build.
 */
void call(Map args = [:]) {
    String problem = StepArgs.unknownKey(STEP, args, KEYS) ?:
        StepArgs.missingKey(STEP, args, [env: "the environment name from mlcd.yaml, e.g. env: 'prod'"])
    if (problem) {
        error(problem)
    }
    String config = args.config ?: 'mlcd.yaml'
    Map cfg = MlcdConfig.load(this, config, STEP)
    Map target = MlcdCli.environment(this, cfg, args.env as String, STEP)
    String credentialsId = args.credentialsId ?: MlcdConfig.defaultCredentialsId(cfg, target.name)
    List<String> vars = ["MLCD_ROLLBACK_REASON=${args.reason ?: 'requested'}".toString()]
    if (args.to) {
        vars << "MLCD_ROLLBACK_TO=${args.to}".toString()
    }
    Map run = MlcdCli.run(this, [stage: 'rollback', env: target.name, config: config,
                                 command: args.to ? COMMAND_TO : COMMAND, vars: vars,
                                 credentials: MlcdCli.keyBinding(this, credentialsId, target.apiKeyEnv)])
    MlcdCli.publish(this, run)
    if (run.exitCode == 0) {
        String to = MlcdCli.detail(run, 'to', 'the previous bundle')
        MlcdCli.describe(this, "${target.name}: rolled back to ${to} (verified)")
        return
    }
    if (run.exitCode == 7) {
        unstable(MlcdCli.failureMessage(STEP, target.name, run))
        return
    }
    if (run.exitCode == 5) {
        MlcdCli.describe(this, "${target.name}: ROLLBACK FAILED, a person must act")
    }
    error(MlcdCli.failureMessage(STEP, target.name, run))
}
