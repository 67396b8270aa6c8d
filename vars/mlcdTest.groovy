import groovy.transform.Field
import org.mlcd.MlcdCli
import org.mlcd.MlcdStep

@Field static final String STEP = 'mlcdTest'
@Field static final List<String> KEYS = ['env', 'config', 'credentialsId',
                                         'signingCredentialsId', 'previousSigningCredentialsId']
@Field static final String COMMAND = 'mlcd test --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV"'

/**
 * Run an environment's test scenarios. Failed tests make the build UNSTABLE (through junit); when
 * mlcd rolled the environment back (outcome ROLLED_BACK, exit 3) the description says to which
 * bundle. Tests that could not complete (exit 4: rolled back, verified), a failed rollback (exit 5)
 * or any other failure (node unreachable, bad config) fail it.
 */
void call(Map args = [:]) {
    Map step = MlcdStep.begin(this, [step: STEP, args: args, keys: KEYS, envExample: 'test'])
    String name = step.env
    Map run = MlcdStep.execute(this, step, [stage: 'test', command: COMMAND, credentials: MlcdStep.nodeKey(this, step)])
    if (run.exitCode == 0) {
        return
    }
    String outcome = run.result?.outcome
    if (run.exitCode == 3) {
        if (outcome == 'ROLLED_BACK') {
            String to = MlcdCli.detail(run, 'rolledBackTo', 'the previous bundle')
            MlcdCli.describe(this, "${name}: tests failed; rolled back to ${to} (verified)")
        }
        String message = MlcdCli.failureMessage(STEP, name, run)
        if (run.failed == 0) {
            unstable(message)
        } else {
            echo message
        }
        return
    }
    // exit 4: the tests could not complete (e.g. DSS refused a run) on a bundle this build deployed
    String rollbackFailed = outcome == 'ROLLBACK_FAILED' ? 'tests failed and ROLLBACK FAILED, a person must act' :
        "tests could not complete; this build's bundle stays active unchecked, a person must act"
    MlcdStep.failNotingRollback(this, step, run, 'tests could not complete', rollbackFailed)
}
