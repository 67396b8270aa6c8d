import groovy.transform.Field
import org.mlcd.MlcdCli
import org.mlcd.MlcdConfig
import org.mlcd.StepArgs

@Field static final String STEP = 'mlcdSmokeTest'
@Field static final List<String> KEYS = ['env', 'config', 'credentialsId', 'rollback']
@Field static final String COMMAND = 'mlcd smoke --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV"'
@Field static final String COMMAND_NO_ROLLBACK = 'mlcd smoke --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV" ' +
    '--no-rollback'

/**
 * Run the smoke scenario(s) of an environment. On failure mlcd rolls the environment back
 * (unless rollback: false); a verified rollback is noted in the build description. Fails the build.
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
    boolean rollback = args.rollback != false
    Map run = MlcdCli.run(this, [stage: 'smoke', env: target.name, config: config,
                                 command: rollback ? COMMAND : COMMAND_NO_ROLLBACK,
                                 credentials: MlcdCli.keyBinding(this, credentialsId, target.apiKeyEnv)])
    MlcdCli.publish(this, run)
    if (run.exitCode == 0) {
        return
    }
    if (run.exitCode == 4) {
        String to = MlcdCli.detail(run, 'rolledBackTo', 'the previous bundle')
        MlcdCli.describe(this, "${target.name}: smoke test failed; rolled back to ${to} (verified)")
    } else if (run.exitCode == 5) {
        MlcdCli.describe(this, "${target.name}: smoke test failed and ROLLBACK FAILED, a person must act")
    }
    error(MlcdCli.failureMessage(STEP, target.name, run))
}
