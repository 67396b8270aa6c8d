import groovy.transform.Field
import org.mlcd.MlcdStep

@Field static final String STEP = 'mlcdSmokeTest'
@Field static final List<String> KEYS = ['env', 'config', 'credentialsId', 'rollback',
                                         'signingCredentialsId', 'previousSigningCredentialsId']
@Field static final String COMMAND = 'mlcd smoke --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV"'
@Field static final String COMMAND_NO_ROLLBACK = 'mlcd smoke --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV" ' +
    '--no-rollback'

/**
 * Run the smoke scenario(s) of an environment. On failure mlcd rolls the environment back
 * (unless rollback: false); a verified rollback is noted in the build description. Fails the build.
 */
void call(Map args = [:]) {
    Map step = MlcdStep.begin(this, [step: STEP, args: args, keys: KEYS, envExample: 'prod'])
    boolean rollback = args.rollback != false
    Map run = MlcdStep.execute(this, step, [stage: 'smoke', command: rollback ? COMMAND : COMMAND_NO_ROLLBACK,
                                            credentials: MlcdStep.nodeKey(this, step)])
    if (run.exitCode == 0) {
        return
    }
    MlcdStep.failNotingRollback(this, step, run, 'smoke test failed',
        'smoke test failed and ROLLBACK FAILED, a person must act')
}
