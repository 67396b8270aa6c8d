package steps

import harness.MethodCall
import harness.PipelineAbort
import org.junit.Test

class MlcdPipelineTest extends MlcdStepTestBase {
    static final List<String> FULL = ['Release candidate', 'Setup', 'Validate', 'Bundle', 'Publish', 'Environments',
                                      'Deploy test', 'Test test', 'Approve prod', 'Deploy prod', 'Smoke prod']

    /** Run mlcdPipeline; prod needs approval, so submitter defaults to 'release-managers' unless the test says. */
    private Throwable runPipeline(Map args = [:]) {
        Map a = args.containsKey('submitter') || args.containsKey('allowAnyApprover') ? args :
            [submitter: 'release-managers'] + args
        Throwable e = runStep('mlcdPipeline', a)
        return e ?: helper.pipelineFailure
    }

    private int indexOf(String method, Closure<Boolean> which = { MethodCall c -> true }) {
        return helper.callStack.findIndexOf { MethodCall c -> c.methodName == method && which(c) }
    }

    /** Names of the calls enclosing the call at `index` (its closure ancestors). */
    private List<String> ancestors(int index) {
        List<String> names = []
        int depth = helper.callStack[index].stackDepth
        for (int i = index - 1; i >= 0 && depth > 0; i--) {
            MethodCall c = helper.callStack[i]
            if (c.stackDepth < depth) {
                names << c.methodName
                depth = c.stackDepth
            }
        }
        return names
    }

    private int indexOfCli(String command, String envName) {
        return helper.callStack.findIndexOf { MethodCall c ->
            c.methodName == 'sh' && (helper.shScript(c) - ~/^set \+x\n/).startsWith("mlcd ${command} ") && c.env.MLCD_ENV == envName
        }
    }

    @Test
    void releaseBranchRunsEveryStageInOrder() {
        assert runPipeline(submitter: 'release-managers') == null
        assert helper.stages == FULL
        assert commands() == ['validate', 'bundle', 'publish', 'deploy test', 'test test', 'approve prod', 'deploy prod',
                              'smoke prod']
        assert helper.pipelineOptions*.methodName == ['disableConcurrentBuilds']
        assertJobStatusSuccess()
        assert currentBuild.description == "bundle ${BUNDLE}\ntest: ${BUNDLE} deployed\nprod: ${BUNDLE} deployed"
    }

    @Test
    void productionNeedsApprovalBeforeDeployAndRunsInsideItsLock() {
        runPipeline(submitter: [prod: 'release-managers'], approvalTimeoutMinutes: 15)
        int input = indexOf('input')
        assert input > 0
        assert (helper.callStack[input].args[0] as Map).submitter == 'release-managers'
        assert indexOf('milestone') < input
        assert (helper.calls('timeout').find { MethodCall c -> (c.args[0] as Map).time == 15 }) != null
        assert input < indexOfCli('deploy', 'prod')
        assert indexOfCli('deploy', 'test') < input
        // waiting for a person holds no executor: the input is not inside any node block
        assert ancestors(input).contains('stage') && !ancestors(input).contains('node')
        assert ancestors(indexOfCli('deploy', 'prod')).contains('node')
        int lockProd = indexOf('lock') { MethodCall c -> (c.args[0] as Map).resource == 'mlcd-CHURN-prod' }
        assert lockProd > input && lockProd < indexOfCli('deploy', 'prod')
        assert helper.callStack[indexOfCli('smoke', 'prod')].stackDepth > helper.callStack[lockProd].stackDepth
    }

    @Test
    void pullRequestNeverDeploysPastTheFirstEnvironmentNorPublishes() {
        env.BRANCH_NAME = 'PR-12'
        env.CHANGE_ID = '12'
        assert runPipeline() == null
        assert commands() == ['validate', 'bundle', 'deploy test', 'test test']
        assert helper.skippedStages == ['Publish']
        assert !helper.stages.contains('Deploy prod')
        assert helper.calls('input').isEmpty()
        assert helper.log.contains('mlcdPipeline: pull request 12 deploys only to the first environment; not deploying to prod')
        assertJobStatusSuccess()
    }

    @Test
    void pullRequestUsesTheTrustedMlcdYamlBeforeAnyCredentialIsBound() {
        env.BRANCH_NAME = 'PR-13'
        env.CHANGE_ID = '13'
        helper.trustedFiles['mlcd.yaml'] = helper.files['mlcd.yaml']
        assert runPipeline() == null
        int trusted = indexOf('readTrusted')
        assert trusted >= 0 && trusted < indexOf('withCredentials')
        assert helper.calls('readTrusted')[0].args[0] == 'mlcd.yaml'
        int write = indexOf('writeFile') { MethodCall c -> (c.args[0] as Map).file == 'mlcd.yaml' }
        assert write > trusted && write < indexOf('withCredentials')
        // the trusted copy travels with the state to the agents of the environments
        assert helper.calls('stash').findAll { MethodCall c -> (c.args[0] as Map).name == 'mlcd-state' }
            .every { MethodCall c -> ((c.args[0] as Map).includes as String).split(', ').contains('mlcd.yaml') }
    }

    @Test
    void pullRequestThatChangesMlcdYamlStopsBeforeAnyKeyIsBound() {
        env.BRANCH_NAME = 'PR-14'
        env.CHANGE_ID = '14'
        helper.trustedFiles['mlcd.yaml'] = 'project: CHURN\n# the target branch version\n'
        helper.files['mlcd.yaml'] = 'project: CHURN\ndesign: {url: https://attacker.example}\n'
        Throwable e = runPipeline()
        assert e.message.startsWith('mlcdPipeline: pull request 14 changes mlcd.yaml, which decides where API keys are sent')
        assert helper.calls('withCredentials').isEmpty()
        assert cliRuns.isEmpty()
        assertJobStatusFailure()
        assertNoSecretLeaked()
    }

    @Test
    void otherBranchesNeverDeployPastTheFirstEnvironment() {
        env.BRANCH_NAME = 'feature/new-model'
        runPipeline(releaseBranch: 'main')
        assert commands().findAll { String c -> c.endsWith(' prod') }.isEmpty()
        assert helper.log.any { String l -> l.contains("branch 'feature/new-model' is not the release branch 'main'") }
        env.BRANCH_NAME = 'release'
        cliRuns.clear()
        helper.stages.clear()
        runPipeline(releaseBranch: 'release')
        assert commands().contains('deploy prod')
    }

    @Test
    void failedSmokeTestRollsBackEveryEnvironmentThisBuildChanged() {
        cliResult('smoke', 'prod', 4, 'ROLLED_BACK', 'TEST_SMOKE failed; previous bundle re-activated and verified', 1)
        cliResult('unwind', 'prod', 0, 'NOOP', 'mlcd already handled prod (ROLLED_BACK): nothing to unwind')
        Throwable e = runPipeline()
        assert e.message.startsWith('mlcdSmokeTest: prod: TEST_SMOKE failed')
        // mlcd unwind decides, newest first: prod was rolled back by mlcd smoke itself; test is rolled back now
        assert commands().drop(7) == ['smoke prod', 'unwind prod', 'unwind test']
        Map unwind = cliRuns[-1]
        assert unwind.vars.MLCD_UNWIND_REASON.startsWith('build 42 failed: mlcdSmokeTest: prod')
        assert !unwind.script.contains('--policy')
        assert helper.stages.takeRight(3) == ['Smoke prod', 'Rollback prod', 'Rollback test']
        assert helper.log.contains('mlcdPipeline: prod: NOOP: mlcd already handled prod (ROLLED_BACK): nothing to unwind')
        assert indexOf('lock') { MethodCall c -> (c.args[0] as Map).resource == 'mlcd-CHURN-test' } <
            indexOfCli('unwind', 'test')
        assertJobStatusFailure()
        assert currentBuild.description.contains("prod: smoke test failed; rolled back to ${PREVIOUS} (verified)")
        assert currentBuild.description.contains("test: rolled back to ${PREVIOUS} (verified)")
    }

    @Test
    void failedProductionDeployFailsTheBuildAndRollsBackTest() {
        cliResult('deploy', 'prod', 8, 'FAILED', 'activation refused: missing connection')
        Throwable e = runPipeline()
        assert e.message.startsWith('mlcdDeploy: prod: activation refused')
        assert commands().takeRight(2) == ['deploy prod', 'unwind test']
        assertJobStatusFailure()
    }

    @Test
    void failedTestsRolledBackByMlcdStopPromotionAndAreNotRolledBackTwice() {
        // what mlcd test writes when tests fail with rollback_on_failure on (the default): ROLLED_BACK, exit 3
        cliResult('test', 'test', 3, 'ROLLED_BACK', 'tests failed on test: 1 of 3 passed; rolled back', 1)
        cliResult('unwind', 'test', 0, 'NOOP', 'mlcd already handled test (ROLLED_BACK): nothing to unwind')
        assert runPipeline() == null
        assert commands() == ['validate', 'bundle', 'publish', 'deploy test', 'test test', 'unwind test']
        assert helper.calls('input').isEmpty()
        assert !helper.stages.any { String st -> st.endsWith(' prod') }
        assert helper.log.contains('mlcdPipeline: tests failed on test; not promoting this bundle further')
        assert helper.log.contains('mlcdPipeline: test: NOOP: mlcd already handled test (ROLLED_BACK): nothing to unwind')
        assert currentBuild.description.contains("test: tests failed; rolled back to ${PREVIOUS} (verified)")
        assertJobStatusUnstable()
    }

    @Test
    void failedTestsWithNothingToRollBackToStopPromotionAndTryTheRollback() {
        // first deployment to test: mlcd test has no previous bundle, writes GATE_FAILED with exit 3
        cliResult('test', 'test', 3, 'GATE_FAILED', '1 of 3 test scenarios failed', 1)
        cliResult('unwind', 'test', 0, 'NOOP', 'mlcd already handled test (NEEDS_ATTENTION): nothing to unwind')
        assert runPipeline() == null
        assert commands() == ['validate', 'bundle', 'publish', 'deploy test', 'test test', 'unwind test']
        assert helper.calls('input').isEmpty()
        assertJobStatusUnstable()
    }

    @Test
    void failedTestsWhoseRollbackFailedFailTheBuildAndAreNotRolledBackAgain() {
        cliResult('test', 'test', 5, 'ROLLBACK_FAILED', 'tests failed on test; could not verify the rollback', 1)
        cliResult('unwind', 'test', 0, 'NOOP', 'mlcd already handled test (NEEDS_ATTENTION): nothing to unwind')
        Throwable e = runPipeline()
        assert e.message.startsWith('mlcdTest: test: tests failed on test')
        assert commands() == ['validate', 'bundle', 'publish', 'deploy test', 'test test', 'unwind test']
        assert helper.log.contains('mlcdPipeline: test: NOOP: mlcd already handled test (NEEDS_ATTENTION): nothing to unwind')
        assertJobStatusFailure()
    }

    @Test
    void rollbackRespectsTheOptOuts() {
        // mlcd unwind reads rollback_on_failure from mlcd.yaml and keeps test; the pipeline only reports it
        cliResult('smoke', 'prod', 4, 'ROLLED_BACK', 'smoke failed', 1)
        cliResult('unwind', 'test', 0, 'KEPT', 'rollback_on_failure is false: bundle B stays active on test')
        runPipeline()
        assert helper.log.contains('mlcdPipeline: test: KEPT: rollback_on_failure is false: bundle B stays active on test')
        assert !currentBuild.description.contains('test: rolled back')
        // rollbackOnFailure: false overrides the policy with keep
        cliRuns.clear()
        currentBuild.reset()
        runPipeline(rollbackOnFailure: false)
        List<Map> unwinds = cliRuns.findAll { Map r -> r.command == 'unwind' }
        assert unwinds*.env == ['prod', 'test'] && unwinds.every { Map r -> r.script.contains('--policy keep') }
    }

    @Test
    void rejectedApprovalRollsNothingBack() {
        helper.inputResponder = { Map m ->
            currentBuild.result = 'ABORTED'
            throw new PipelineAbort('Rejected by carol')
        }
        runPipeline()
        assert commands() == ['validate', 'bundle', 'publish', 'deploy test', 'test test']
        assert currentBuild.currentResult == 'ABORTED'
    }

    @Test
    void setupVersionMismatchStopsTheBuildBeforeAnyMlcdCommand() {
        installedVersion = 'mlcd 0.0.1'
        Throwable e = runPipeline()
        assert e.message.startsWith('mlcdSetup: the mlcd CLI in /agents/a1/workspace/team@tmp/mlcd-venv-')
        assert e.message.contains(' is 0.0.1 but this library is')
        assert cliRuns.isEmpty()
        assert helper.stages == ['Release candidate', 'Setup']
        assert helper.skippedStages.containsAll(['Validate', 'Bundle', 'Publish', 'Environments'])
        assertJobStatusFailure()
    }

    @Test
    void keysAreBoundPerTargetAndNeverInterpolated() {
        helper.credentials['churn-prod-automation'] = 'prod-key-other-7d793037'
        runPipeline(credentials: [prod: 'churn-prod-automation'], artifactCredentialsId: 'mlcd-churn-artifacts')
        Map byCommand = cliRuns.collectEntries { Map r -> [("${r.command} ${r.env}".toString()): r.vars] }
        assert byCommand['validate null'].DSS_DESIGN_API_KEY == SECRETS['mlcd-churn-design']
        assert byCommand['deploy test'].DSS_TEST_API_KEY == SECRETS['mlcd-churn-test']
        assert !byCommand['deploy test'].containsKey('DSS_PROD_API_KEY')
        assert byCommand['deploy prod'].DSS_PROD_API_KEY == 'prod-key-other-7d793037'
        assert helper.shScripts().every { String s -> !s.contains('prod-key-other-7d793037') }
        assertNoSecretLeaked()
        helper.callStack.each { MethodCall c -> assert !helper.callArgsToString(c).contains('prod-key-other') }
    }

    /** A workspace as the real CLI leaves it after a release, with the bundle archive. */
    private void releaseTree() {
        ['.mlcd/run.json', '.mlcd/bundle.json', '.mlcd/deploy-test.json', '.mlcd/audit.jsonl',
         '.mlcd/reports/test/tests.xml', '.mlcd/reports/test/report.html',
         ".mlcd/bundles/${BUNDLE}.zip".toString(), ".mlcd/bundles/${BUNDLE}.zip.sha256".toString()].each { String f ->
            helper.files.putIfAbsent(f, 'x')
        }
    }

    /** The files a stash call would take from the fake workspace (includes minus excludes). */
    private List<String> stashed(Map args) {
        List<String> taken = helper.glob(args.includes as String)
        return args.excludes ? taken - helper.glob(args.excludes as String) : taken
    }

    @Test
    void everyReportIsPublishedAndNoBundleArchived() {
        runPipeline()
        releaseTree()
        List<String> reports = helper.calls('junit').collect { MethodCall c -> (c.args[0] as Map).testResults as String }
        assert reports.containsAll(['.mlcd/reports/validate.xml', '.mlcd/reports/test/tests.xml', '.mlcd/reports/prod/smoke.xml'])
        assert helper.calls('junit').every { MethodCall c -> (c.args[0] as Map).allowEmptyResults == true }
        List<String> archived = helper.calls('archiveArtifacts')
            .collectMany { MethodCall c -> helper.glob((c.args[0] as Map).artifacts as String) }.unique()
        assert archived.containsAll(['.mlcd/run.json', '.mlcd/audit.jsonl', '.mlcd/reports/test/tests.xml'])
        assert !archived.any { String f -> f.startsWith('.mlcd/bundles/') }
    }

    @Test
    void theBundleArchiveIsStashedOnceAndUnstashedOnlyToDeploy() {
        List<List<String>> taken = []
        helper.registerAllowedMethod('stash', [Map]) { Map m ->
            releaseTree()
            taken << stashed(m)
            helper.stash(m)
        }
        cliResult('smoke', 'prod', 4, 'ROLLED_BACK', 'smoke failed on prod; rolled back', 1)
        runPipeline()
        List<Map> stashes = helper.calls('stash').collect { MethodCall c -> c.args[0] as Map }
        List<Map> bundle = stashes.findAll { Map m -> m.name == 'mlcd-bundle' }
        assert bundle.size() == 1
        assert taken[stashes.indexOf(bundle[0])] == [".mlcd/bundles/${BUNDLE}.zip".toString(), ".mlcd/bundles/${BUNDLE}.zip.sha256".toString()]
        List<Map> state = stashes.findAll { Map m -> m.name == 'mlcd-state' }
        assert state.size() == 5  // release candidate, test, prod, unwind of prod, unwind of test
        state.each { Map m ->
            List<String> files = taken[stashes.indexOf(m)]
            assert files.contains('.mlcd/run.json') && files.contains('mlcd.yaml')
            assert !files.any { String f -> f.startsWith('.mlcd/bundles/') }
        }
        List<String> unstashed = helper.calls('unstash').collect { MethodCall c -> c.args[0] as String }
        assert unstashed == ['mlcd-state', 'mlcd-bundle', 'mlcd-state', 'mlcd-bundle', 'mlcd-state', 'mlcd-state']
    }

    @Test
    void anEnvironmentsExecutorIsTakenOnlyOnceItsLockIsHeld() {
        cliResult('smoke', 'prod', 4, 'ROLLED_BACK', 'smoke failed on prod; rolled back', 1)
        runPipeline()
        ['deploy test', 'deploy prod', 'smoke prod', 'unwind test'].each { String cmd ->
            List<String> parts = cmd.split(' ')
            List<String> outer = ancestors(indexOfCli(parts[0], parts[1]))
            assert outer.contains('node') && outer.contains('lock')
            assert outer.indexOf('node') < outer.indexOf('lock'): "${cmd}: node must be inside lock, not around it"
        }
        helper.calls('lock').each { MethodCall c ->
            assert !ancestors(helper.callStack.indexOf(c)).contains('node')
        }
    }

    @Test
    void anEnvironmentThatNeedsApprovalNeedsApprovers() {
        Throwable e = runPipeline(submitter: null)
        assert e.message == "mlcdPipeline: prod needs approval but no submitter is given, so anyone who may build this " +
            "job could approve it (fix: submitter: 'release-managers' or [prod: '...'], or allowAnyApprover: true)"
        assert cliRuns.isEmpty()
        assert helper.calls('withCredentials').isEmpty()
        currentBuild.reset()
        e = runPipeline(submitter: [test: 'qa'])
        assert e.message.startsWith('mlcdPipeline: prod needs approval but no submitter is given')
        currentBuild.reset()
        cliRuns.clear()
        assert runPipeline(allowAnyApprover: true) == null
        assert !(helper.calls('input')[0].args[0] as Map).containsKey('submitter')
        assert commands().contains('deploy prod')
    }

    @Test
    void unknownKeyAndUnknownCredentialsTargetAreRejectedWithTheClosestValidKey() {
        Throwable e = runStep('mlcdPipeline', [agentLable: 'linux'])
        assert e.message.startsWith("mlcdPipeline: unknown argument 'agentLable' (did you mean 'agentLabel'?)")
        assert helper.stages.isEmpty()
        currentBuild.reset()
        e = runPipeline(credentials: [prd: 'x'])
        assert e.message.startsWith("mlcdPipeline credentials: unknown argument 'prd' (did you mean 'prod'?)")
        assert cliRuns.isEmpty()
    }

    @Test
    void noArtifactRepositorySkipsPublish() {
        helper.yamlDocs['mlcd.yaml'].remove('artifact_repository')
        runPipeline()
        assert helper.skippedStages == ['Publish']
        assert !commands().contains('publish')
        assertJobStatusSuccess()
    }
}
