import groovy.transform.Field
import org.mlcd.MlcdStep

@Field static final String STEP = 'mlcdValidate'
@Field static final List<String> KEYS = ['config', 'credentialsId',
                                         'signingCredentialsId', 'previousSigningCredentialsId']
@Field static final String COMMAND = 'mlcd validate --config "$MLCD_CONFIG_PATH"'

/** Check the project on the design node is ready to release; JUnit report; the build fails if not. */
void call(Map args = [:]) {
    Map step = MlcdStep.begin(this, [step: STEP, args: args, keys: KEYS, node: 'design'])
    Map run = MlcdStep.execute(this, step, [stage: 'validate', command: COMMAND,
                                            credentials: MlcdStep.nodeKey(this, step)])
    MlcdStep.failUnlessSuccess(this, step, run)
}
