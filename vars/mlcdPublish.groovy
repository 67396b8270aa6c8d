import groovy.transform.Field
import org.mlcd.MlcdCli
import org.mlcd.MlcdStep

@Field static final String STEP = 'mlcdPublish'
@Field static final List<String> KEYS = ['config', 'credentialsId',
                                         'signingCredentialsId', 'previousSigningCredentialsId']
@Field static final String COMMAND = 'mlcd publish --config "$MLCD_CONFIG_PATH"'

/** Store the bundle archive in the artifact repository of mlcd.yaml and verify it by reading it back. */
void call(Map args = [:]) {
    Map step = MlcdStep.begin(this, [step: STEP, args: args, keys: KEYS, node: 'artifacts'])
    if (step.cfg.artifactRepository == null) {
        error("${STEP}: ${step.config} has no artifact_repository (fix: add one, or do not call ${STEP})")
    }
    Map run = MlcdStep.execute(this, step, [stage: 'publish', command: COMMAND,
                                            credentials: MlcdCli.artifactBindings(this, step.cfg, step.credentialsId)])
    MlcdStep.failUnlessSuccess(this, step, run)
}
