import groovy.transform.Field
import org.mlcd.MlcdCli
import org.mlcd.MlcdConfig
import org.mlcd.StepArgs

@Field static final String STEP = 'mlcdBundle'
@Field static final List<String> KEYS = ['config', 'credentialsId', 'bundleId']
@Field static final String COMMAND = 'mlcd bundle --config "$MLCD_CONFIG_PATH"'
@Field static final String COMMAND_WITH_ID = 'mlcd bundle --config "$MLCD_CONFIG_PATH" --bundle-id "$MLCD_BUNDLE_ID"'

/** Export a bundle on the design node and download it with its sha256; starts the run record. */
void call(Map args = [:]) {
    String problem = StepArgs.unknownKey(STEP, args, KEYS)
    if (problem) {
        error(problem)
    }
    String config = args.config ?: 'mlcd.yaml'
    Map cfg = MlcdConfig.load(this, config, STEP)
    String credentialsId = args.credentialsId ?: MlcdConfig.defaultCredentialsId(cfg, 'design')
    List<String> vars = args.bundleId ? ["MLCD_BUNDLE_ID=${args.bundleId}".toString()] : []
    Map run = MlcdCli.run(this, [stage: 'bundle', config: config, command: args.bundleId ? COMMAND_WITH_ID : COMMAND,
                                 vars: vars, credentials: MlcdCli.keyBinding(this, credentialsId, cfg.designKeyEnv)])
    MlcdCli.publish(this, run)
    if (run.exitCode != 0) {
        error(MlcdCli.failureMessage(STEP, null, run))
    }
    MlcdCli.describe(this, "bundle ${run.result?.bundleId}")
}
