import groovy.transform.Field
import org.mlcd.MlcdCli
import org.mlcd.MlcdConfig
import org.mlcd.StepArgs

@Field static final String STEP = 'mlcdValidate'
@Field static final List<String> KEYS = ['config', 'credentialsId']
@Field static final String COMMAND = 'mlcd validate --config "$MLCD_CONFIG_PATH"'

/** Check the project on the design node is ready to release; JUnit report; the build fails if not. */
void call(Map args = [:]) {
    String problem = StepArgs.unknownKey(STEP, args, KEYS)
    if (problem) {
        error(problem)
    }
    String config = args.config ?: 'mlcd.yaml'
    Map cfg = MlcdConfig.load(this, config, STEP)
    String credentialsId = args.credentialsId ?: MlcdConfig.defaultCredentialsId(cfg, 'design')
    Map run = MlcdCli.run(this, [stage: 'validate', config: config, command: COMMAND,
                                 credentials: MlcdCli.keyBinding(this, credentialsId, cfg.designKeyEnv)])
    MlcdCli.publish(this, run)
    if (run.exitCode != 0) {
        error(MlcdCli.failureMessage(STEP, null, run))
    }
}
