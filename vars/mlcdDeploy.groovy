import groovy.transform.Field
import org.mlcd.MlcdCli
import org.mlcd.MlcdConfig
import org.mlcd.MlcdStep
import org.mlcd.Promotion

@Field static final String STEP = 'mlcdDeploy'
@Field static final List<String> KEYS = ['env', 'config', 'credentialsId', 'artifactCredentialsId', 'releaseBranch',
                                         'branch', 'signingCredentialsId', 'previousSigningCredentialsId',
                                         'approvalCredentialsId']
@Field static final String COMMAND = 'mlcd deploy --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV"'

/**
 * Import, preload, activate and verify this run's bundle on one environment. An approval given by
 * mlcdApprove outside any agent is recorded here first (mlcd approve), in this workspace.
 * Fails the build if the deployment fails; a verified automatic rollback is noted in the description.
 * Only a build of `releaseBranch` (default 'main') that is not a pull request may deploy past the
 * first environment of mlcd.yaml (org.mlcd.Promotion, the same rule as mlcdPipeline). The branch is
 * `branch` if given, else env.BRANCH_NAME (multibranch), else env.GIT_BRANCH (only inside a declarative
 * stage's agent); mlcdPipeline passes the one it decided in Setup.
 */
void call(Map args = [:]) {
    Map step = MlcdStep.begin(this, [step: STEP, args: args, keys: KEYS, envExample: 'test'])
    String name = step.env
    List<String> names = MlcdConfig.environmentNames(step.cfg)
    String blocked = Promotion.blocker(this, (args.releaseBranch ?: 'main') as String, args.branch as String)
    if (blocked && names.indexOf(name) > 0) {
        error("${STEP}: ${blocked} (${names[0]}); not deploying to ${name} " +
            "(fix: merge into the release branch, whose build deploys further, or pass branch: when the job is " +
            'not multibranch)')
    }
    String pendingVar = MlcdCli.pendingApprovalVar(name)
    // property access: subscripting env (getAt/putAt) is rejected in the sandbox
    String approver = env.getProperty(pendingVar)
    if (approver) {
        // the approval key is bound only around this `mlcd approve`, never around `mlcd deploy`
        MlcdCli.recordApproval(this, [step: STEP, config: step.config, cfg: step.cfg, env: name, approver: approver,
                                      comment: env.getProperty(pendingVar + '_COMMENT'),
                                      signingIds: step.signingIds, approvalCredentialsId: args.approvalCredentialsId])
        env.setProperty(pendingVar, '')
    }
    List bindings = MlcdStep.nodeKey(this, step) +
        MlcdCli.artifactBindings(this, step.cfg, args.artifactCredentialsId as String)
    Map run = MlcdStep.execute(this, step, [stage: 'deploy', command: COMMAND, credentials: bindings])
    if (run.exitCode == 0) {
        MlcdCli.describe(this, "${name}: ${run.result?.bundleId ?: "this build's bundle"} deployed")
        return
    }
    MlcdStep.failNotingRollback(this, step, run, 'deployment failed', 'ROLLBACK FAILED, a person must act')
}
