import groovy.transform.Field
import org.mlcd.MlcdCli
import org.mlcd.MlcdConfig
import org.mlcd.StepArgs

@Field static final String STEP = 'mlcdPublish'
@Field static final List<String> KEYS = ['config', 'credentialsId']
@Field static final String COMMAND = 'mlcd publish --config "$MLCD_CONFIG_PATH"'

/** Store the bundle archive in the artifact repository of mlcd.yaml and verify it by reading it back. */
void call(Map args = [:]) {
    String problem = StepArgs.unknownKey(STEP, args, KEYS)
    if (problem) {
        error(problem)
    }
    String config = args.config ?: 'mlcd.yaml'
    Map cfg = MlcdConfig.load(this, config, STEP)
    if (cfg.artifactRepository == null) {
        error("${STEP}: ${config} has no artifact_repository (fix: add one, or do not call ${STEP})")
    }
    String credentialsId = args.credentialsId ?: MlcdConfig.defaultCredentialsId(cfg, 'artifacts')
    Map run = MlcdCli.run(this, [stage: 'publish', config: config, command: COMMAND,
                                 credentials: MlcdCli.artifactBindings(this, cfg, credentialsId)])
    MlcdCli.publish(this, run)
    if (run.exitCode != 0) {
        error(MlcdCli.failureMessage(STEP, null, run))
    }
}
