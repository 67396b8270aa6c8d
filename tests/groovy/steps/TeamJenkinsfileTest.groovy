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
        assertNoSecretLeaked()
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

    @Test
    void failedTestsNeverReachApprovalNorProd() {
        // mlcd test with rollback_on_failure on: ROLLED_BACK, exit 3; mlcdTest returns, the build is UNSTABLE
        cliResult('test', 'test', 3, 'ROLLED_BACK', 'tests failed on test: 1 of 3 passed; rolled back', 1)
        loadScript('examples/Jenkinsfile.team')
        assert helper.skippedStages == ['Approve prod', 'Prod']
        assert helper.calls('input').isEmpty()
        assert !commands().any { String c -> c.endsWith(' prod') }
        assertJobStatusUnstable()
    }

    @Test
    void prodLockIsTakenBeforeTheAgentAndOnlyThisBuildsBundleIsUnstashed() {
        loadScript('examples/Jenkinsfile.team')
        int lock = helper.callStack.findIndexOf { c -> c.methodName == 'lock' && c.args[0] == 'mlcd-CHURN-prod' }
        int node = helper.callStack.findIndexOf { c -> c.methodName == 'node' && helper.callStack.indexOf(c) > lock }
        assert lock > 0 && node > lock
        assert helper.callStack[node].stackDepth > helper.callStack[lock].stackDepth
        assert helper.calls('unstash')*.args*.getAt(0) == ['mlcd-state', 'mlcd-bundle']
        Map state = helper.calls('stash')*.args*.getAt(0).find { Map m -> m.name == 'mlcd-state' } as Map
        assert state.excludes == '.mlcd/bundles/**'
    }
}
