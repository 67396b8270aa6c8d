import groovy.transform.Field
import org.mlcd.MlcdCli
import org.mlcd.MlcdStep

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
    Map step = MlcdStep.begin(this, [step: STEP, args: args, keys: KEYS, envExample: 'prod'])
    String name = step.env
    boolean rollback = args.rollback != false
    Map run = MlcdStep.execute(this, step, [stage: 'smoke', command: rollback ? COMMAND : COMMAND_NO_ROLLBACK,
                                            credentials: MlcdStep.nodeKey(this, step)])
    if (run.exitCode == 0) {
        return
    }
    if (run.exitCode == 4) {
        String to = MlcdCli.detail(run, 'rolledBackTo', 'the previous bundle')
        MlcdCli.describe(this, "${name}: smoke test failed; rolled back to ${to} (verified)")
    } else if (run.exitCode == 5) {
        MlcdCli.describe(this, "${name}: smoke test failed and ROLLBACK FAILED, a person must act")
    }
    MlcdStep.fail(this, step, run)
}
