import groovy.transform.Field
import org.mlcd.MlcdCli
import org.mlcd.MlcdConfig
import org.mlcd.StepArgs

@Field static final String STEP = 'mlcdTest'
@Field static final List<String> KEYS = ['env', 'config', 'credentialsId']
@Field static final String COMMAND = 'mlcd test --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV"'

/**
 * Run an environment's test scenarios. Failed tests make the build UNSTABLE (through junit); when
 * mlcd rolled the environment back (outcome ROLLED_BACK, exit 3) the description says to which
 * bundle. Tests that could not complete (exit 4: rolled back, verified), a failed rollback (exit 5)
 * or any other failure (node unreachable, bad config) fail it.
 */
void call(Map args = [:]) {
    String problem = StepArgs.unknownKey(STEP, args, KEYS) ?:
        StepArgs.missingKey(STEP, args, [env: "the environment name from mlcd.yaml, e.g. env: 'test'"])
    if (problem) {
        error(problem)
    }
    String config = args.config ?: 'mlcd.yaml'
    Map cfg = MlcdConfig.load(this, config, STEP)
    Map target = MlcdCli.environment(this, cfg, args.env as String, STEP)
    String credentialsId = args.credentialsId ?: MlcdConfig.defaultCredentialsId(cfg, target.name)
    Map run = MlcdCli.run(this, [stage: 'test', env: target.name, config: config, command: COMMAND,
                                 credentials: MlcdCli.keyBinding(this, credentialsId, target.apiKeyEnv)])
    int failed = MlcdCli.publish(this, run)
    if (run.exitCode == 0) {
        return
    }
    String outcome = run.result?.outcome
    if (run.exitCode == 3) {
        if (outcome == 'ROLLED_BACK') {
            String to = MlcdCli.detail(run, 'rolledBackTo', 'the previous bundle')
            MlcdCli.describe(this, "${target.name}: tests failed; rolled back to ${to} (verified)")
        }
        String message = MlcdCli.failureMessage(STEP, target.name, run)
        if (failed == 0) {
            unstable(message)
        } else {
            echo message
        }
        return
    }
    if (run.exitCode == 4) {
        // the tests could not complete (e.g. DSS refused a run) on a bundle this build deployed
        String to = MlcdCli.detail(run, 'rolledBackTo', 'the previous bundle')
        MlcdCli.describe(this, "${target.name}: tests could not complete; rolled back to ${to} (verified)")
    } else if (run.exitCode == 5 && outcome == 'ROLLBACK_FAILED') {
        MlcdCli.describe(this, "${target.name}: tests failed and ROLLBACK FAILED, a person must act")
    } else if (run.exitCode == 5) {
        MlcdCli.describe(this, "${target.name}: tests could not complete; this build's bundle stays active " +
            'unchecked, a person must act')
    }
    error(MlcdCli.failureMessage(STEP, target.name, run))
}
