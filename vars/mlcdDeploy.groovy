import groovy.transform.Field
import org.mlcd.MlcdCli
import org.mlcd.MlcdConfig
import org.mlcd.Promotion
import org.mlcd.StepArgs

@Field static final String STEP = 'mlcdDeploy'
@Field static final List<String> KEYS = ['env', 'config', 'credentialsId', 'artifactCredentialsId', 'releaseBranch']
@Field static final String COMMAND = 'mlcd deploy --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV"'

/**
 * Import, preload, activate and verify this run's bundle on one environment. An approval given by
 * mlcdApprove outside any agent is recorded here first (mlcd approve), in this workspace.
 * Fails the build if the deployment fails; a verified automatic rollback is noted in the description.
 * Only a build of `releaseBranch` (default 'main') that is not a pull request may deploy past the
 * first environment of mlcd.yaml (org.mlcd.Promotion, the same rule as mlcdPipeline).
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
    List<String> names = MlcdConfig.environmentNames(cfg)
    String blocked = Promotion.blocker(this, (args.releaseBranch ?: 'main') as String)
    if (blocked && names.indexOf(target.name) > 0) {
        error("${STEP}: ${blocked} (${names[0]}); not deploying to ${target.name} " +
            "(fix: merge into the release branch, whose build deploys further)")
    }
    String pendingVar = MlcdCli.pendingApprovalVar(target.name)
    // property access: subscripting env (getAt/putAt) is rejected in the sandbox
    String approver = env.getProperty(pendingVar)
    if (approver) {
        MlcdCli.recordApproval(this, [step: STEP, config: config, env: target.name, approver: approver,
                                      comment: env.getProperty(pendingVar + '_COMMENT')])
        env.setProperty(pendingVar, '')
    }
    String credentialsId = args.credentialsId ?: MlcdConfig.defaultCredentialsId(cfg, target.name)
    List bindings = MlcdCli.keyBinding(this, credentialsId, target.apiKeyEnv) +
        MlcdCli.artifactBindings(this, cfg, args.artifactCredentialsId as String)
    Map run = MlcdCli.run(this, [stage: 'deploy', env: target.name, config: config, command: COMMAND,
                                 credentials: bindings])
    MlcdCli.publish(this, run)
    if (run.exitCode == 0) {
        MlcdCli.describe(this, "${target.name}: ${run.result?.bundleId} deployed")
        return
    }
    if (run.exitCode == 4) {
        String to = MlcdCli.detail(run, 'rolledBackTo', 'the previous bundle')
        MlcdCli.describe(this, "${target.name}: deployment failed; rolled back to ${to} (verified)")
    } else if (run.exitCode == 5) {
        MlcdCli.describe(this, "${target.name}: ROLLBACK FAILED, a person must act")
    }
    error(MlcdCli.failureMessage(STEP, target.name, run))
}
