package steps

import groovy.json.JsonOutput
import harness.PipelineAbort
import org.jenkinsci.plugins.workflow.steps.FlowInterruptedException
import org.junit.Test

/**
 * What only a real controller shows (issue 13), under the strict harness: timeouts that interrupt,
 * GIT_BRANCH only inside a declarative agent, per-node workspaces, json-lib nulls, restart from a stage.
 */
class JenkinsBehaviourTest extends MlcdStepTestBase {
    private Throwable runPipeline(Map args = [:]) {
        Throwable e = runStep('mlcdPipeline', [submitter: 'release-managers'] + args)
        return e ?: helper.pipelineFailure
    }

    @Test
    void aTimeoutDuringADeployNeverCutsTheRollbackShortAndNamesWhatTimedOut() {
        // prod's deploy hangs for 5 hours; a rollback takes 3 minutes (activation, verification, smoke)
        helper.addShDuration({ String s -> s.contains('mlcd deploy') && helper.env.MLCD_ENV == 'prod' }, 300)
        helper.addShDuration({ String s -> s.contains('mlcd rollback') }, 3)
        Throwable e = runPipeline()
        assert e instanceof FlowInterruptedException
        assert currentBuild.currentResult == 'ABORTED'
        // prod's deploy was interrupted (its sh never finished); the rollback of test ran to its end
        assert commands().takeRight(2) == ['approve prod', 'unwind test']
        assert currentBuild.description.contains("test: rolled back to ${PREVIOUS} (verified)")
        // the deploy's own limit (60 minutes) fired, not a build-wide one
        assert helper.minutes < 120
        String reason = cliRuns[-1].vars.MLCD_UNWIND_REASON
        assert reason == 'build 42 was aborted, or timed out (timeouts.deploy: 60 minutes), during the deploy to prod'
        // release candidate, deploy test, test test, approval of prod, deploy prod; none around the rollback
        assert helper.calls('timeout').collect { (it.args[0] as Map).time } == [240, 60, 120, 60, 60]
    }

    @Test
    void deployAndTestAndSmokeLimitsAreConfigurableAndCheckedByName() {
        helper.addShDuration({ String s -> s.contains('mlcd smoke') }, 20)
        Throwable e = runPipeline(timeouts: [smoke: 10])
        assert e instanceof FlowInterruptedException
        assert cliRuns.find { it.command == 'unwind' }.vars.MLCD_UNWIND_REASON.endsWith(
            '(timeouts.smoke: 10 minutes), during the smoke test of prod')
        currentBuild.reset()
        assert runPipeline(timeouts: [smoek: 10]).message.startsWith(
            "mlcdPipeline timeouts: unknown argument 'smoek' (did you mean 'smoke'?)")
    }

    @Test
    void aJobThatIsNotMultibranchPromotesFromTheBranchOfItsCheckout() {
        env.remove('BRANCH_NAME')
        helper.scmVars = [GIT_BRANCH: 'origin/main', GIT_COMMIT: '0123456789abcdef0123456789abcdef01234567']
        assert runPipeline() == null: helper.log.text()
        assert commands().contains('deploy prod')
        assert cliRuns.find { it.command == 'deploy' && it.env == 'prod' } != null
        // and a feature branch checked out the same way stops after the first environment
        cliRuns.clear()
        currentBuild.reset()
        helper.scmVars = [GIT_BRANCH: 'origin/feature/x']
        assert runPipeline() == null
        assert !commands().contains('deploy prod')
        assert helper.log.any { String l -> l.contains("branch 'feature/x' is not the release branch 'main'") }
    }

    @Test
    void filesMlcdYamlPointsToReachEveryAgentTheRollbackIncluded() {
        helper.yamlDocs['mlcd.yaml'].environments.each { Map e -> e.tls = [ca_bundle: 'certs/ca.pem'] }
        helper.files['certs/ca.pem'] = '-----BEGIN CERTIFICATE-----'
        List<String> seen = []
        helper.addShMock { String script ->
            if (script.contains('mlcd ') && helper.env.MLCD_ENV) {
                seen << "${script.find(/mlcd \w+/)} ${helper.env.MLCD_ENV} ${helper.fileExists('certs/ca.pem')}".toString()
            }
            return null
        }
        cliResult('smoke', 'prod', 4, 'ROLLED_BACK', 'smoke failed on prod; rolled back', 1)
        runPipeline()
        assert seen == ['mlcd deploy test true', 'mlcd test test true', 'mlcd approve prod true', 'mlcd deploy prod true',
                        'mlcd smoke prod true', 'mlcd unwind prod true', 'mlcd unwind test true']
    }

    @Test
    void aRelativeSetupPathTravelsWithTheState() {
        helper.files['dist/mlcd-0.1.0-py3-none-any.whl'] = 'wheel'
        runPipeline(setup: [source: 'path', path: 'dist/mlcd-0.1.0-py3-none-any.whl'])
        assert helper.calls('stash').findAll { (it.args[0] as Map).name == 'mlcd-state' }.every {
            ((it.args[0] as Map).includes as String).contains('dist/mlcd-0.1.0-py3-none-any.whl')
        }
    }

    @Test
    void aJsonNullInAStageFileIsNotPrintedAsNull() {
        helper.addShMock { String script ->
            if (script.contains('mlcd smoke')) {
                helper.files['.mlcd/smoke-prod.json'] = JsonOutput.toJson([stage: 'smoke', environment: 'prod',
                    outcome: 'ROLLED_BACK', exitCode: 4, bundleId: null, message: 'smoke failed', reports: [],
                    details: [rolledBackTo: null, errorCategory: null]])
                return [stdout: '', exitValue: 4]
            }
            return null
        }
        Throwable e = runStep('mlcdSmokeTest', [env: 'prod'])
        assert e.message == 'mlcdSmokeTest: prod: smoke failed (mlcd exit code 4: deployment failed after activation ' +
            'and was rolled back, verified)'
        assert currentBuild.description == 'prod: smoke test failed; rolled back to the previous bundle (verified)'
    }

    @Test
    void restartingFromEnvironmentsIsRefusedClearly() {
        assert runPipeline() == null
        cliRuns.clear()
        currentBuild.reset()
        helper.stages.clear()
        helper.restartFromStage = 'Environments'
        Throwable e = runPipeline()
        assert e instanceof PipelineAbort
        assert e.message.startsWith("mlcdPipeline: this build was restarted from stage 'Environments', but what the " +
            'release candidate stages decided')
        assert helper.skippedStages.contains('Release candidate')
        assert cliRuns.isEmpty()
        assertJobStatusFailure()
    }
}
