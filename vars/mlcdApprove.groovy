import groovy.transform.Field
import org.mlcd.MlcdCli
import org.mlcd.MlcdConfig
import org.mlcd.MlcdStep

@Field static final String STEP = 'mlcdApprove'
@Field static final List<String> KEYS = ['env', 'config', 'submitter', 'allowAnyApprover', 'timeoutMinutes', 'message',
                                         'signingCredentialsId', 'previousSigningCredentialsId',
                                         'approvalCredentialsId']

/**
 * Ask a person to approve deploying this build's bundle to an environment. Call it outside any
 * agent (an `agent none` stage) so that waiting holds no executor: milestone, then `input`
 * restricted to `submitter` inside a `timeout`, then milestone again (an older build can no longer
 * deploy after a newer one passed). Without `submitter` the build stops, unless allowAnyApprover: true.
 * The approver (learned with submitterParameter) goes to the audit trail through `mlcd approve`, which
 * needs the workspace holding this build's .mlcd/run.json: at once when called inside a node whose
 * workspace has it, otherwise mlcdDeploy records it, in its workspace, before deploying there.
 */
void call(Map args = [:]) {
    MlcdStep.checkArgs(this, STEP, args, KEYS, 'prod')
    String target = args.env
    String config = args.config ?: 'mlcd.yaml'
    int minutes = (args.timeoutMinutes ?: 60) as int
    Map request = [
        id: 'MlcdApprove' + target.replaceAll('[^A-Za-z0-9]', ''),
        message: args.message ?: "Deploy build ${env.BUILD_NUMBER} to ${target}?",
        ok: "Deploy to ${target}".toString(),
        submitterParameter: 'MLCD_APPROVER',
        parameters: [string(name: 'MLCD_APPROVAL_COMMENT', defaultValue: '',
                            description: 'Comment recorded with the approval in the audit trail')],
    ]
    if (args.submitter) {
        request.submitter = args.submitter
    } else if (args.allowAnyApprover == true) {
        echo "${STEP}: allowAnyApprover: anyone allowed to build this job may approve ${target}"
    } else {
        error("${STEP}: no submitter for ${target}, so anyone who may build this job could approve it " +
            "(fix: submitter: 'release-managers' (users or groups, comma-separated), or allowAnyApprover: true)")
    }
    milestone()
    Object answer = null
    try {
        timeout(time: minutes, unit: 'MINUTES') {
            answer = input(request)
        }
    } catch (err) {
        echo "${STEP}: deployment to ${target} was not approved (rejected, or no answer within ${minutes} minutes)"
        throw err
    }
    milestone()
    String approver = answer instanceof Map ? answer.MLCD_APPROVER : String.valueOf(answer)
    String comment = answer instanceof Map ? (answer.MLCD_APPROVAL_COMMENT ?: '') : ''
    echo "${STEP}: ${target} approved by ${approver}"
    if (env.NODE_NAME && fileExists(MlcdCli.RUN_RECORD)) {
        // the approval key (signing.approval_key_env) is bound only around this `mlcd approve`
        MlcdCli.recordApproval(this, [step: STEP, config: config, cfg: MlcdConfig.load(this, config, STEP),
                                      env: target, approver: approver, comment: comment,
                                      signingIds: [signing: args.signingCredentialsId,
                                                   previous: args.previousSigningCredentialsId],
                                      approvalCredentialsId: args.approvalCredentialsId])
    } else {
        String pendingVar = MlcdCli.pendingApprovalVar(target)
        // property access: subscripting env (getAt/putAt) is rejected in the sandbox
        env.setProperty(pendingVar, approver)
        env.setProperty(pendingVar + '_COMMENT', comment)
        echo "${STEP}: mlcdDeploy records this approval in the audit trail before deploying to ${target}"
    }
}
