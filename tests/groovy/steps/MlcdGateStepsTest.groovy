package steps

import harness.MethodCall
import org.junit.Test

/** mlcdValidate, mlcdBundle, mlcdPublish, mlcdTest, mlcdSmokeTest, mlcdRollback. */
class MlcdGateStepsTest extends MlcdStepTestBase {
    private List<Map> junitCalls() {
        return helper.calls('junit').collect { MethodCall c -> c.args[0] as Map }
    }

    @Test
    void validateUsesTheDesignKeyAndPublishesItsReport() {
        assert runStep('mlcdValidate') == null
        assert cliRuns[0].script == 'mlcd validate --config "$MLCD_CONFIG_PATH"'
        assert cliRuns[0].vars.DSS_DESIGN_API_KEY == SECRETS['mlcd-churn-design']
        assert junitCalls() == [[testResults: '.mlcd/reports/validate.xml', allowEmptyResults: true]]
        assert helper.methodCallCount('archiveArtifacts') == 1
        assertNoSecretLeaked()
    }

    @Test
    void failedValidationFailsTheBuild() {
        cliResult('validate', null, 3, 'GATE_FAILED', 'scenario TEST_SMOKE missing', 1)
        Throwable e = runStep('mlcdValidate')
        assert e.message == 'mlcdValidate: scenario TEST_SMOKE missing (mlcd exit code 3: quality gate failed)'
        assertJobStatusFailure()
    }

    @Test
    void bundleRunsWithTheDesignKeyAndNamesTheBundleInTheDescription() {
        runStep('mlcdBundle')
        assert cliRuns[0].script == 'mlcd bundle --config "$MLCD_CONFIG_PATH"'
        assert currentBuild.description == "bundle ${BUNDLE}"
        runStep('mlcdBundle', [bundleId: 'CHURN_hotfix_1'])
        assert cliRuns[1].script == 'mlcd bundle --config "$MLCD_CONFIG_PATH" --bundle-id "$MLCD_BUNDLE_ID"'
        assert cliRuns[1].vars.MLCD_BUNDLE_ID == 'CHURN_hotfix_1'
        assert helper.calls('junit').isEmpty()
    }

    @Test
    void publishBindsRepositoryUserAndPassword() {
        runStep('mlcdPublish')
        assert cliRuns[0].script == 'mlcd publish --config "$MLCD_CONFIG_PATH"'
        assert cliRuns[0].vars.ARTIFACTS_USER == 'ci-bot'
        assert cliRuns[0].vars.ARTIFACTS_PASSWORD == ARTIFACT_PASSWORD
        assertNoSecretLeaked()
    }

    @Test
    void publishWithoutRepositoryIsAConfigurationError() {
        helper.yamlDocs['mlcd.yaml'].remove('artifact_repository')
        assert runStep('mlcdPublish').message ==
            'mlcdPublish: mlcd.yaml has no artifact_repository (fix: add one, or do not call mlcdPublish)'
        assert cliRuns.isEmpty()
    }

    @Test
    void failedTestsMakeTheBuildUnstableThroughJunit() {
        cliResult('test', 'test', 3, 'GATE_FAILED', '2 of 3 test scenarios failed', 2)
        assert runStep('mlcdTest', [env: 'test']) == null
        assert cliRuns[0].script == 'mlcd test --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV"'
        assert junitCalls() == [[testResults: '.mlcd/reports/test/tests.xml', allowEmptyResults: true]]
        assertJobStatusUnstable()
        assert helper.calls('unstable').isEmpty()
    }

    @Test
    void gateFailureWithoutFailedTestcaseStillMarksUnstable() {
        cliResult('test', 'test', 3, 'GATE_FAILED', 'no test scenario matched prefix TEST_', 0)
        runStep('mlcdTest', [env: 'test'])
        assertJobStatusUnstable()
        assert helper.log.contains('WARNING: mlcdTest: test: no test scenario matched prefix TEST_ (mlcd exit code 3: quality gate failed)')
    }

    @Test
    void passingTestsLeaveTheBuildGreenAndUnreachableNodeFailsIt() {
        runStep('mlcdTest', [env: 'test'])
        assertJobStatusSuccess()
        cliResult('test', 'test', 6, 'FAILED', 'test node http://127.0.0.1:11201 unreachable')
        Throwable e = runStep('mlcdTest', [env: 'test'])
        assert e.message.contains('(mlcd exit code 6: node unreachable, TLS failure, or API key refused)')
        assertJobStatusFailure()
    }

    @Test
    void smokeFailureRolledBackIsDescribedAndFailsTheBuild() {
        cliResult('smoke', 'prod', 4, 'ROLLED_BACK', 'TEST_SMOKE failed; previous bundle re-activated and verified', 1)
        Throwable e = runFailingStep('mlcdSmokeTest', [env: 'prod'],
            "prod: smoke test failed; rolled back to ${PREVIOUS} (verified)")
        assert cliRuns[0].script == 'mlcd smoke --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV"'
        assert e.message.startsWith('mlcdSmokeTest: prod: TEST_SMOKE failed')
        assert junitCalls() == [[testResults: '.mlcd/reports/prod/smoke.xml', allowEmptyResults: true]]
    }

    @Test
    void smokeWithoutRollback() {
        runStep('mlcdSmokeTest', [env: 'prod', rollback: false])
        assert cliRuns[0].script == 'mlcd smoke --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV" --no-rollback'
        assertJobStatusSuccess()
    }

    @Test
    void verifiedRollbackIsDescribed() {
        runStep('mlcdRollback', [env: 'prod', reason: 'bad model'])
        assert cliRuns[0].script == 'mlcd rollback --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV" --reason "$MLCD_ROLLBACK_REASON"'
        assert cliRuns[0].vars.MLCD_ROLLBACK_REASON == 'bad model'
        assert currentBuild.description == "prod: rolled back to ${PREVIOUS} (verified)"
        assertJobStatusSuccess()
    }

    @Test
    void rollbackToANamedBundleAndNothingToRollBackTo() {
        cliResult('rollback', 'test', 7, 'NOTHING_TO_ROLL_BACK', 'no previous bundle on test')
        assert runStep('mlcdRollback', [env: 'test', to: 'CHURN_old']) == null
        assert cliRuns[0].script.endsWith('--to "$MLCD_ROLLBACK_TO"')
        assert cliRuns[0].vars.MLCD_ROLLBACK_TO == 'CHURN_old'
        assertJobStatusUnstable()
    }

    @Test
    void failedRollbackAsksForAPerson() {
        cliResult('rollback', 'prod', 5, 'ROLLBACK_FAILED', 'previous bundle did not become active')
        Throwable e = runFailingStep('mlcdRollback', [env: 'prod'], 'prod: ROLLBACK FAILED, a person must act')
        assert e.message.contains('rollback failed or state unverified: a person must act')
    }

    @Test
    void everyStepRejectsUnknownKeysNamingItself() {
        Map<String, Map> bad = [
            mlcdValidate: [credentialId: 'x'], mlcdBundle: [bundleID: 'x'], mlcdPublish: [configg: 'x'],
            mlcdTest: [env: 'test', enviroment: 'x'], mlcdSmokeTest: [env: 'prod', rollbak: false],
            mlcdRollback: [env: 'prod', reson: 'x'], mlcdApprove: [env: 'prod', submiter: 'ops'],
        ]
        Map<String, String> closest = [mlcdValidate: 'credentialsId', mlcdBundle: 'bundleId', mlcdPublish: 'config',
                                       mlcdTest: 'env', mlcdSmokeTest: 'rollback', mlcdRollback: 'reason',
                                       mlcdApprove: 'submitter']
        bad.each { String step, Map args ->
            String key = (args.keySet() - ['env'])[0]
            Throwable e = runStep(step, args)
            assert e.message.startsWith("${step}: unknown argument '${key}' (did you mean '${closest[step]}'?)")
        }
        assert cliRuns.isEmpty()
    }

    @Test
    void rollbackPublishesNoSmokeReportItDidNotWrite() {
        // an earlier smoke test left a failing report in the workspace; mlcd rollback lists no report
        helper.files['.mlcd/reports/prod/smoke.xml'] = junitXml(1)
        assert runStep('mlcdRollback', [env: 'prod', reason: 'bad model']) == null
        assert junitCalls().isEmpty()
        assert helper.methodCallCount('archiveArtifacts') == 1
        assertJobStatusSuccess()
    }

    @Test
    void onlyTheXmlReportsTheStageFileListsArePublished() {
        helper.files['.mlcd/reports/test/tests.xml'] = junitXml(3)
        cliResult('test', 'test', 6, 'FAILED', 'test node unreachable')
        runStep('mlcdTest', [env: 'test'])
        assert junitCalls().isEmpty()
        cliResult('test', 'test', 0, 'SUCCESS', 'tests passed')
        currentBuild.reset()
        runStep('mlcdTest', [env: 'test'])
        assert junitCalls() == [[testResults: '.mlcd/reports/test/tests.xml', allowEmptyResults: true]]
        assert !junitCalls().any { Map m -> (m.testResults as String).endsWith('.html') }
    }

    @Test
    void failedTestsRolledBackByMlcdAreDescribedAndLeaveTheBuildUnstable() {
        // what mlcd test writes with rollback_on_failure on: outcome ROLLED_BACK, exit code 3
        cliResult('test', 'test', 3, 'ROLLED_BACK', 'tests failed on test: 1 of 3 passed; rolled back', 2)
        assert runStep('mlcdTest', [env: 'test']) == null
        assert currentBuild.description == "test: tests failed; rolled back to ${PREVIOUS} (verified)"
        assertJobStatusUnstable()
        currentBuild.reset()
        cliResult('test', 'test', 3, 'ROLLED_BACK', 'tests failed on test; rolled back', 2, [summary: '1 of 3 passed'])
        runStep('mlcdTest', [env: 'test'])
        assert currentBuild.description == 'test: tests failed; rolled back to the previous bundle (verified)'
    }

    @Test
    void failedTestsWhoseRollbackFailedFailTheBuildAndAskForAPerson() {
        cliResult('test', 'test', 5, 'ROLLBACK_FAILED', 'tests failed on test; could not verify the rollback', 1)
        Throwable e = runFailingStep('mlcdTest', [env: 'test'],
            'test: tests failed and ROLLBACK FAILED, a person must act')
        assert e.message.contains('(mlcd exit code 5: rollback failed or state unverified: a person must act)')
    }

    @Test
    void testsThatCouldNotCompleteAreRolledBackAndFailTheBuild() {
        // release/gate.py (node-error row of docs/decisions.md): a refused scenario run on this build's bundle, rolled back
        cliResult('test', 'test', 4, 'ROLLED_BACK', 'tests on test could not complete: run refused; rolled back')
        Throwable e = runFailingStep('mlcdTest', [env: 'test'],
            "test: tests could not complete; rolled back to ${PREVIOUS} (verified)")
        assert e.message.contains('(mlcd exit code 4: deployment failed after activation and was rolled back, verified)')
        currentBuild.reset()
        cliResult('test', 'test', 5, 'FAILED', 'tests on test could not complete; not checked (rollback disabled)')
        runFailingStep('mlcdTest', [env: 'test'],
            "test: tests could not complete; this build's bundle stays active unchecked, a person must act")
    }
}
