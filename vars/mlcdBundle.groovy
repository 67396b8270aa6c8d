import groovy.transform.Field
import org.mlcd.MlcdCli
import org.mlcd.MlcdStep

@Field static final String STEP = 'mlcdBundle'
@Field static final List<String> KEYS = ['config', 'credentialsId', 'bundleId',
                                         'signingCredentialsId', 'previousSigningCredentialsId']
@Field static final String COMMAND = 'mlcd bundle --config "$MLCD_CONFIG_PATH"'
@Field static final String COMMAND_WITH_ID = 'mlcd bundle --config "$MLCD_CONFIG_PATH" --bundle-id "$MLCD_BUNDLE_ID"'

/** Export a bundle on the design node and download it with its sha256; starts the run record. */
void call(Map args = [:]) {
    Map step = MlcdStep.begin(this, [step: STEP, args: args, keys: KEYS, node: 'design'])
    List<String> vars = args.bundleId ? ["MLCD_BUNDLE_ID=${args.bundleId}".toString()] : []
    Map run = MlcdStep.execute(this, step, [stage: 'bundle', command: args.bundleId ? COMMAND_WITH_ID : COMMAND,
                                            vars: vars, credentials: MlcdStep.nodeKey(this, step)])
    MlcdStep.failUnlessSuccess(this, step, run)
    MlcdCli.describe(this, "bundle ${run.result?.bundleId}")
}
