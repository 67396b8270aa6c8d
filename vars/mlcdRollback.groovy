import groovy.transform.Field
import org.mlcd.MlcdCli
import org.mlcd.MlcdStep

@Field static final String STEP = 'mlcdRollback'
@Field static final List<String> KEYS = ['env', 'config', 'credentialsId', 'to', 'reason',
                                         'signingCredentialsId', 'previousSigningCredentialsId']
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
    Map step = MlcdStep.begin(this, [step: STEP, args: args, keys: KEYS, envExample: 'prod'])
    String name = step.env
    List<String> vars = ["MLCD_ROLLBACK_REASON=${args.reason ?: 'requested'}".toString()]
    if (args.to) {
        vars << "MLCD_ROLLBACK_TO=${args.to}".toString()
    }
    Map run = MlcdStep.execute(this, step, [stage: 'rollback', command: args.to ? COMMAND_TO : COMMAND, vars: vars,
                                            credentials: MlcdStep.nodeKey(this, step)])
    if (run.exitCode == 0) {
        String to = MlcdCli.detail(run, 'to', 'the previous bundle')
        MlcdCli.describe(this, "${name}: rolled back to ${to} (verified)")
        return
    }
    if (run.exitCode == 7) {
        unstable(MlcdCli.failureMessage(STEP, name, run))
        return
    }
    if (run.exitCode == 5) {
        MlcdCli.describe(this, "${name}: ROLLBACK FAILED, a person must act")
    }
    MlcdStep.fail(this, step, run)
}
