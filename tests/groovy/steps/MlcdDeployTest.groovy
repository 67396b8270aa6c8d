package steps

import harness.MethodCall
import org.junit.Test

class MlcdDeployTest extends MlcdStepTestBase {
    @Test
    void runsExactCommandWithKeyBoundOnlyThroughTheEnvironment() {
        assert runStep('mlcdDeploy', [env: 'prod']) == null
        assert cliRuns.size() == 1
        Map run = cliRuns[0]
        assert run.script == 'mlcd deploy --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV"'
        assert run.vars.MLCD_CONFIG_PATH == 'mlcd.yaml'
        assert run.vars.MLCD_ENV == 'prod'
        assert run.vars.DSS_PROD_API_KEY == SECRETS['mlcd-churn-prod']
        assert !run.vars.containsKey('DSS_TEST_API_KEY')
        MethodCall creds = lastCall('withCredentials')
        assert (creds.args[0] as List) == [[$class: 'StringBinding', credentialsId: 'mlcd-churn-prod',
                                            variable: 'DSS_PROD_API_KEY']]
        assert env.DSS_PROD_API_KEY == null
        assertNoSecretLeaked()
        assertJobStatusSuccess()
        assert currentBuild.description == "prod: ${BUNDLE} deployed"
    }

    @Test
    void usesTheVenvOfMlcdSetupAndTheGivenCredentialsAndConfig() {
        helper.yamlDocs['ci/mlcd.yaml'] = teamConfig()
        helper.files['ci/mlcd.yaml'] = ''
        helper.credentials['team-test-key'] = 'other-secret'
        env.MLCD_VENV = '/ws/team/.mlcd-venv'
        runStep('mlcdDeploy', [env: 'test', config: 'ci/mlcd.yaml', credentialsId: 'team-test-key'])
        Map run = cliRuns[0]
        assert run.vars.PATH.startsWith('/ws/team/.mlcd-venv/bin:')
        assert run.vars.MLCD_CONFIG_PATH == 'ci/mlcd.yaml'
        assert run.vars.DSS_TEST_API_KEY == 'other-secret'
        assert !helper.shScripts().any { String s -> s.contains('other-secret') }
    }

    @Test
    void archivesRecordsAuditAndReportsButNeverTheBundle() {
        ['.mlcd/run.json', '.mlcd/audit.jsonl', '.mlcd/reports/test/report.html',
         ".mlcd/bundles/${BUNDLE}.zip".toString(), ".mlcd/bundles/${BUNDLE}.zip.sha256".toString()].each { String f ->
            helper.files[f] = 'x'
        }
        runStep('mlcdDeploy', [env: 'test'])
        List<String> archived = helper.glob((lastCall('archiveArtifacts').args[0] as Map).artifacts as String)
        assert archived == ['.mlcd/audit.jsonl', '.mlcd/deploy-test.json', '.mlcd/reports/test/report.html', '.mlcd/run.json']
    }

    @Test
    void refusedDeploymentFailsTheBuildWithTheCliMessage() {
        cliResult('deploy', 'prod', 8, 'FAILED', 'activation refused: connection warehouse_prod is missing')
        Throwable e = runStep('mlcdDeploy', [env: 'prod'])
        assert e.message == 'mlcdDeploy: prod: activation refused: connection warehouse_prod is missing ' +
            '(mlcd exit code 8: DSS refused a step before activation; the environment is unchanged)'
        assertJobStatusFailure()
        assert helper.methodCallCount('archiveArtifacts') == 1
    }

    @Test
    void verifiedRollbackIsReportedInTheDescriptionAndFailsTheBuild() {
        cliResult('deploy', 'prod', 4, 'ROLLED_BACK', 'scenario check failed after activation; previous bundle active')
        Throwable e = runFailingStep('mlcdDeploy', [env: 'prod'],
            "prod: deployment failed; rolled back to ${PREVIOUS} (verified)")
        assert e.message.startsWith('mlcdDeploy: prod: scenario check failed')
    }

    @Test
    void unknownKeyIsRejectedWithTheClosestValidKey() {
        Throwable e = runStep('mlcdDeploy', [enviroment: 'prod'])
        assert e.message == "mlcdDeploy: unknown argument 'enviroment' (did you mean 'env'?); " +
            'valid arguments: env, config, credentialsId, artifactCredentialsId, releaseBranch, branch, ' +
            'signingCredentialsId, previousSigningCredentialsId, approvalCredentialsId'
        assert cliRuns.isEmpty()
    }

    @Test
    void missingOrUnknownEnvironmentIsNamed() {
        assert runStep('mlcdDeploy', [:]).message.startsWith("mlcdDeploy: missing argument 'env'")
        assert runStep('mlcdDeploy', [env: 'staging']).message ==
            "mlcdDeploy: environment 'staging' is not in mlcd.yaml (fix: use one of test, prod)"
        assert cliRuns.isEmpty()
    }

    @Test
    void missingStageFileIsReportedNotCrashedOn() {
        helper.addShMock(~/(?s)set \+x\nmlcd deploy.*/, 'mlcd: command not found', 127)
        Throwable e = runStep('mlcdDeploy', [env: 'test'])
        assert e.message == 'mlcdDeploy: test: mlcd wrote no .mlcd/deploy-test.json; see the mlcd output above ' +
            '(mlcd exit code 127: mlcd not found: run mlcdSetup first)'
    }

    @Test
    void pendingApprovalIsRecordedBeforeDeploying() {
        env.MLCD_APPROVAL_PENDING_PROD = 'alice'
        env.MLCD_APPROVAL_PENDING_PROD_COMMENT = 'go; rm -rf /'
        runStep('mlcdDeploy', [env: 'prod'])
        assert commands() == ['approve prod', 'deploy prod']
        Map approve = cliRuns[0]
        assert approve.script == 'mlcd approve --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV" ' +
            '--approver "$MLCD_APPROVER" --comment "$MLCD_APPROVAL_COMMENT"'
        assert approve.vars.MLCD_APPROVER == 'alice'
        assert approve.vars.MLCD_APPROVAL_COMMENT == 'go; rm -rf /'
        assert !env.MLCD_APPROVAL_PENDING_PROD
        runStep('mlcdDeploy', [env: 'prod'])
        assert commands() == ['approve prod', 'deploy prod', 'deploy prod']
    }

    @Test
    void artifactCredentialsAreBoundAsUsernameAndPassword() {
        runStep('mlcdDeploy', [env: 'test', artifactCredentialsId: 'mlcd-churn-artifacts'])
        Map run = cliRuns[0]
        assert run.vars.ARTIFACTS_USER == 'ci-bot'
        assert run.vars.ARTIFACTS_PASSWORD == ARTIFACT_PASSWORD
        assertNoSecretLeaked()
    }

    @Test
    void missingCredentialFailsTheBuild() {
        helper.credentials.remove('mlcd-churn-test')
        Throwable e = runStep('mlcdDeploy', [env: 'test'])
        assert e.message == "Could not find credentials entry with ID 'mlcd-churn-test'"
        assert cliRuns.isEmpty()
    }

    @Test
    void pullRequestCannotDeployPastTheFirstEnvironmentEvenWithTheSingleStep() {
        env.CHANGE_ID = '12'
        Throwable e = runStep('mlcdDeploy', [env: 'prod'])
        assert e.message == 'mlcdDeploy: pull request 12 deploys only to the first environment (test); not deploying ' +
            'to prod (fix: merge into the release branch, whose build deploys further, or pass branch: when the job is ' +
            'not multibranch)'
        assert cliRuns.isEmpty()
        currentBuild.reset()
        assert runStep('mlcdDeploy', [env: 'test']) == null
        assert commands() == ['deploy test']
    }

    @Test
    void onlyTheReleaseBranchDeploysPastTheFirstEnvironment() {
        env.BRANCH_NAME = 'feature/x'
        Throwable e = runStep('mlcdDeploy', [env: 'prod'])
        assert e.message.startsWith("mlcdDeploy: branch 'feature/x' is not the release branch 'main' and deploys only " +
            'to the first environment (test); not deploying to prod')
        assert cliRuns.isEmpty()
        currentBuild.reset()
        env.remove('BRANCH_NAME')
        e = runStep('mlcdDeploy', [env: 'prod'])
        assert e.message.startsWith('mlcdDeploy: the branch is unknown')
        env.GIT_BRANCH = 'origin/release'
        currentBuild.reset()
        assert runStep('mlcdDeploy', [env: 'prod', releaseBranch: 'release']) == null
        assert runStep('mlcdDeploy', [env: 'test']) == null
        assert commands() == ['deploy prod', 'deploy test']
    }

    @Test
    void rollbackWithoutRolledBackToInTheStageFileNamesThePreviousBundleGenerically() {
        // a stage file without details.rolledBackTo still gives a true description
        cliResult('deploy', 'prod', 4, 'ROLLED_BACK', 'verification failed; previous bundle active', 0, [:])
        Throwable e = runFailingStep('mlcdDeploy', [env: 'prod'],
            'prod: deployment failed; rolled back to the previous bundle (verified)')
        assert e.message.startsWith('mlcdDeploy: prod: verification failed')
    }
}
