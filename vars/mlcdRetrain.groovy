import groovy.transform.Field
import org.mlcd.MlcdCli
import org.mlcd.MlcdStep

@Field static final String STEP = 'mlcdRetrain'
@Field static final List<String> KEYS = ['env', 'config', 'credentialsId', 'model', 'ifDrift',
                                         'signingCredentialsId', 'previousSigningCredentialsId']
@Field static final String COMMAND = 'mlcd retrain --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV"'
@Field static final String MODEL = ' --model "$MLCD_MODEL"'
@Field static final String IF_DRIFT = ' --if-drift'

/**
 * Retrain on an environment: mlcd runs the retrain scenario (with ifDrift: true, only when the drift
 * metric is above its threshold) and keeps each new saved-model version only if it beats the active one
 * (continuous_training in mlcd.yaml). A kept challenger is noted in the build
 * description; a challenger that lost makes the build UNSTABLE (the champion stays, verified); a
 * restored champion after a failure (exit 4) or an unverified model state (exit 5) fails it.
 */
void call(Map args = [:]) {
    Map step = MlcdStep.begin(this, [step: STEP, args: args, keys: KEYS, envExample: 'prod'])
    String name = step.env
    List<String> vars = args.model ? ["MLCD_MODEL=${args.model}".toString()] : []
    String command = COMMAND + (args.model ? MODEL : '') + (args.ifDrift == true ? IF_DRIFT : '')
    Map run = MlcdStep.execute(this, step, [stage: 'retrain', command: command, vars: vars,
                                            credentials: MlcdStep.nodeKey(this, step)])
    if (run.exitCode == 0) {
        String done = run.result?.outcome == 'NOOP' ? 'no drift, not retrained' :
            'retrained, new model version kept (verified)'
        MlcdCli.describe(this, "${name}: ${done}")
        return
    }
    if (run.exitCode == 3) {
        MlcdCli.describe(this, "${name}: retrained, the champion model stays")
        unstable(MlcdCli.failureMessage(STEP, name, run))
        return
    }
    if (run.exitCode == 4) {
        MlcdCli.describe(this, "${name}: retrain failed; champion model active again (verified)")
    } else if (run.exitCode == 5) {
        MlcdCli.describe(this, "${name}: retrain failed and the MODEL STATE IS UNVERIFIED, a person must act")
    }
    MlcdStep.fail(this, step, run)
}
