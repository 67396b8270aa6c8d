package steps

import org.junit.Test

/** The example Jenkinsfiles run through the harness: the single-step team pipeline and the churn example. */
class TeamJenkinsfileTest extends MlcdStepTestBase {
    @Test
    void mainBranchApprovesThenDeploysProdInsideItsLock() {
        loadScript('examples/Jenkinsfile.team')
        assert helper.pipelineFailure == null
        assert helper.stages == ['Release candidate', 'Setup', 'Validate', 'Recipe checks', 'Bundle', 'Test environment',
                                 'Approve prod', 'Prod']
        assert commands() == ['validate', 'bundle', 'deploy test', 'test test', 'approve prod', 'deploy prod', 'smoke prod']
        assert helper.calls('lock')*.args*.getAt(0) == ['mlcd-CHURN-test', 'mlcd-CHURN-prod']
        assert (helper.calls('input')[0].args[0] as Map).submitter == 'release-managers'
        assertJobStatusSuccess()
    }

    @Test
    void pullRequestStopsAfterTheTestEnvironment() {
        env.BRANCH_NAME = 'PR-3'
        env.CHANGE_ID = '3'
        loadScript('examples/Jenkinsfile.team')
        assert helper.skippedStages == ['Approve prod', 'Prod']
        assert !commands().any { String c -> c.endsWith(' prod') }
    }

    @Test
    void churnExampleTwoLineJenkinsfileRunsTheWholePipeline() {
        loadScript('examples/churn/Jenkinsfile')
        assert helper.pipelineFailure == null
        assert commands() == ['validate', 'bundle', 'publish', 'deploy test', 'test test', 'approve prod', 'deploy prod',
                              'smoke prod']
        assert (helper.calls('input')[0].args[0] as Map).submitter == 'release-managers'
        assertJobStatusSuccess()
    }
}
