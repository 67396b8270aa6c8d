package steps

import harness.MethodCall
import harness.PipelineAbort
import org.junit.Test

class MlcdApproveTest extends MlcdStepTestBase {
    @Test
    void asksWithSubmitterInsideTimeoutBetweenMilestones() {
        env.remove('NODE_NAME')
        helper.inputResponder = { Map m -> [MLCD_APPROVER: 'bob', MLCD_APPROVAL_COMMENT: 'CAB-123'] }
        assert runStep('mlcdApprove', [env: 'prod', submitter: 'release-managers', timeoutMinutes: 30]) == null
        List<String> order = helper.callStack.collect { MethodCall c -> c.methodName }
            .findAll { String n -> n in ['milestone', 'timeout', 'input'] }
        assert order == ['milestone', 'timeout', 'input', 'milestone']
        assert (lastCall('timeout').args[0] as Map) == [time: 30, unit: 'MINUTES']
        Map input = lastCall('input').args[0] as Map
        assert input.submitter == 'release-managers'
        assert input.submitterParameter == 'MLCD_APPROVER'
        assert input.message == 'Deploy build 42 to prod?'
        assert input.id == 'MlcdApproveprod'
        assert lastCall('input').stackDepth > lastCall('timeout').stackDepth
        assert helper.calls('node').isEmpty()
        // recorded in the audit trail by mlcdDeploy, in its workspace
        assert env.MLCD_APPROVAL_PENDING_PROD == 'bob'
        assert env.MLCD_APPROVAL_PENDING_PROD_COMMENT == 'CAB-123'
        assert cliRuns.isEmpty()
        runStep('mlcdDeploy', [env: 'prod'])
        assert commands() == ['approve prod', 'deploy prod']
        assert cliRuns[0].vars.MLCD_APPROVER == 'bob'
    }

    @Test
    void thereIsNoLabelOptionThatWouldRecordInAnotherWorkspace() {
        Throwable e = runStep('mlcdApprove', [env: 'prod', submitter: 'ops', label: 'linux'])
        assert e.message.startsWith("mlcdApprove: unknown argument 'label'")
        assert helper.calls('node').isEmpty()
        assert helper.calls('input').isEmpty()
    }

    @Test
    void insideANodeWhoseWorkspaceHoldsTheRunRecordTheApproverIsRecordedAtOnce() {
        env.NODE_NAME = 'linux-1'
        helper.files['.mlcd/run.json'] = '{}'
        runStep('mlcdApprove', [env: 'prod', submitter: 'ops'])
        assert commands() == ['approve prod']
        assert cliRuns[0].vars.MLCD_APPROVER == 'approver'
        assert !env.MLCD_APPROVAL_PENDING_PROD
    }

    @Test
    void insideANodeWithoutThisBuildsRunRecordMlcdDeployRecordsItLater() {
        env.NODE_NAME = 'linux-2'
        runStep('mlcdApprove', [env: 'prod', submitter: 'ops'])
        assert cliRuns.isEmpty()
        assert env.MLCD_APPROVAL_PENDING_PROD == 'approver'
        assertJobStatusSuccess()
    }

    @Test
    void rejectionStopsTheBuildAndRecordsNothing() {
        helper.inputResponder = { Map m -> throw new PipelineAbort('Rejected by carol') }
        Throwable e = runStep('mlcdApprove', [env: 'prod', submitter: 'ops'])
        assert e.message == 'Rejected by carol'
        assert helper.log.contains('mlcdApprove: deployment to prod was not approved (rejected, or no answer within 60 minutes)')
        assert helper.methodCallCount('milestone') == 1
        assert cliRuns.isEmpty()
        assert !env.MLCD_APPROVAL_PENDING_PROD
    }

    @Test
    void withoutSubmitterTheBuildStopsUnlessAnyApproverIsAllowed() {
        Throwable e = runStep('mlcdApprove', [env: 'prod'])
        assert e.message == "mlcdApprove: no submitter for prod, so anyone who may build this job could approve it " +
            "(fix: submitter: 'release-managers' (users or groups, comma-separated), or allowAnyApprover: true)"
        assert helper.calls('input').isEmpty()
        assert helper.calls('milestone').isEmpty()
        assertJobStatusFailure()
        currentBuild.reset()
        assert runStep('mlcdApprove', [env: 'prod', allowAnyApprover: true]) == null
        assert !(lastCall('input').args[0] as Map).containsKey('submitter')
        assert helper.log.contains('mlcdApprove: allowAnyApprover: anyone allowed to build this job may approve prod')
    }
}
