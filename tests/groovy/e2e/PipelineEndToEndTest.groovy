package e2e

import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import harness.BasePipelineTest
import harness.MethodCall
import harness.RealShell
import java.util.concurrent.TimeUnit
import org.junit.After
import org.junit.AfterClass
import org.junit.Before
import org.junit.BeforeClass
import org.junit.Test

/**
 * mlcdPipeline through the harness with `sh` run for real (bash -c) against stand-in DSS nodes
 * (design, test, prod) started by stand_in.py: the Groovy-to-CLI contract (commands, environment
 * variables, stage files, reports) is exercised, not assumed.
 */
class PipelineEndToEndTest extends BasePipelineTest {
    private static Process nodes
    private static BufferedReader nodesOut
    private static Writer nodesIn
    private static Map info
    private static File root
    private static int build = 0

    File workspace

    @BeforeClass
    static void startNodes() {
        root = File.createTempDir('mlcd-groovy-e2e', '')
        File repo = libraryRoot()
        ProcessBuilder pb = new ProcessBuilder(new File(repo, '.venv/bin/python').path,
            new File(repo, 'tests/groovy/e2e/stand_in.py').path, root.path)
        pb.redirectError(new File(root, 'stand_in.log'))
        nodes = pb.start()
        nodesOut = new BufferedReader(new InputStreamReader(nodes.inputStream, 'UTF-8'))
        nodesIn = new OutputStreamWriter(nodes.outputStream, 'UTF-8')
        String first = nodesOut.readLine()
        assert first != null: "stand_in.py did not start: ${new File(root, 'stand_in.log').text}"
        info = new JsonSlurper().parseText(first) as Map
    }

    @AfterClass
    static void stopNodes() {
        if (nodes != null) {
            try {
                nodesIn.write('{"op": "stop"}\n')
                nodesIn.flush()
            } catch (IOException ignored) {
                // already gone
            }
            if (!nodes.waitFor(30, TimeUnit.SECONDS)) {
                nodes.destroy()
                nodes.waitFor(10, TimeUnit.SECONDS)
            }
        }
        root?.deleteDir()
    }

    static Map ask(Map command) {
        nodesIn.write(JsonOutput.toJson(command) + '\n')
        nodesIn.flush()
        return new JsonSlurper().parseText(nodesOut.readLine()) as Map
    }

    @Before
    void realWorkspace() {
        build++
        workspace = new File(root, "ws-${build}")
        workspace.mkdirs()
        new File(workspace, 'mlcd.yaml').text = new File(info.config as String).text
        new File(workspace, 'approval-key.pub').text = new File(root, 'approval-key.pub').text
        helper.workspace = workspace
        env.WORKSPACE = workspace.path
        env.BUILD_NUMBER = String.valueOf(build)
        env.BUILD_URL = "https://jenkins.example.com/job/churn/${build}/".toString()
        env.HOME = root.path
        env.MLCD_LOCK_DIR = new File(root, 'locks').path
        env.PYTHONUNBUFFERED = '1'
        if (System.getenv('PYTHONPATH')) {
            env.PYTHONPATH = System.getenv('PYTHONPATH')  // a checkout's mlcd first (a worktree), as for stand_in.py
        }
        (info.keys as Map).each { String target, String key ->
            helper.credentials["mlcd-churn-${target}".toString()] = key
        }
        String python = new File(helper.libraryRoot, '.venv/bin/python').path
        helper.yamlParser = { String text ->
            Process p = new ProcessBuilder(python, '-c',
                'import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))').start()
            p.outputStream.withWriter('UTF-8') { Writer w -> w.write(text) }
            String out = p.inputStream.getText('UTF-8')
            assert p.waitFor() == 0
            new JsonSlurper().parseText(out)
        }
        int allocations = 0
        helper.newRealWorkspace = { -> new File(root, "ws-${build}-node${++allocations}") }
        helper.shExecutor = { String script, Map<String, String> vars, boolean returnStdout ->
            RealShell.run(helper.workspace, script, vars, returnStdout)
        }
        helper.inputResponder = { Map m -> [MLCD_APPROVER: 'rita.release', MLCD_APPROVAL_COMMENT: 'CAB-7'] }
    }

    /**
     * No key (API keys, the signing key, the approval private key) in any step argument, in the build
     * description, in any file of any workspace, or in the console log (which holds the `sh -xe` traces):
     * not whole, not URL-encoded, not base64, not any 8 characters of it.
     */
    @After
    void noKeyLeaked() {
        String console = helper.log.text()
        (info.keys as Map).values().each { String key ->
            helper.callStack.each { MethodCall c -> assert !helper.callArgsToString(c).contains(key) }
            secretForms(key).each { String form -> assert !console.contains(form): 'a key in the console log' }
            for (int i = 0; i + 8 <= key.length(); i++) {
                assert !console.contains(key.substring(i, i + 8)): "8 characters of a key in the console log"
            }
            assert !(currentBuild.description ?: '').contains(key)
            helper.calls('sh').findAll { MethodCall c -> c.env.values().contains(key) }.each { MethodCall c ->
                assert helper.shScript(c).startsWith('set +x'): 'sh with an API key bound runs traced'
            }
            root.eachFileRecurse { File f ->
                if (f.isFile() && f.path.contains('/ws-') && !f.name.endsWith('.zip')) {
                    assert !f.text.contains(key): "API key written to ${f}"
                }
            }
        }
    }

    /** The forms of a secret a log search must not find: plain, URL-encoded, base64. */
    static List<String> secretForms(String secret) {
        return [secret, URLEncoder.encode(secret, 'UTF-8'), URLEncoder.encode(secret, 'UTF-8').replace('+', '%20'),
                secret.bytes.encodeBase64().toString()].unique()
    }

    /** After a run: the workspace of the last node allocation (where the last stage files are). */
    private void useLastWorkspace() {
        workspace = helper.workspaces ? helper.workspaces[-1] as File : workspace
    }

    private void runPipeline() {
        loadScript('vars/mlcdPipeline.groovy').invokeMethod('call',
            [[submitter: 'release-managers', setup: [venv: new File(helper.libraryRoot, '.venv').path]]] as Object[])
        assert helper.log.any { String l -> l.startsWith('+ ') }: 'sh ran without -x'
        useLastWorkspace()
    }

    private Map json(String path) {
        return new JsonSlurper().parse(new File(workspace, path)) as Map
    }

    private List<Map> auditRecords() {
        return new File(workspace, '.mlcd/audit.jsonl').readLines()
            .collect { String l -> new JsonSlurper().parseText(l) as Map }
    }

    private List<Map> deployments() {
        return auditRecords().findAll { Map r -> r.operation == 'deployment' }
    }

    @Test
    void releaseGoesToTestThenApprovedProdAndABrokenReleaseIsRolledBackEverywhere() {
        env.BRANCH_NAME = 'main'
        runPipeline()
        assert helper.pipelineFailure == null: helper.log.takeRight(30).join('\n')
        assertJobStatusSuccess()
        String bundle = json('.mlcd/bundle.json').bundleId
        assert ask([op: 'active', env: 'test']).bundleId == bundle
        assert ask([op: 'active', env: 'prod']).bundleId == bundle
        assert json('.mlcd/run.json').environments.prod.approvedBy == 'rita.release'
        // signing: configured, keys bound from Jenkins credentials: the approval is signed, the audit trail HMAC-chained
        assert json('.mlcd/run.json').environments.prod.approval.signature.alg == 'ed25519'
        assert auditRecords().every { Map r -> (r.mac as String).startsWith('hmac-sha256:') }
        assert auditRecords().any { Map r -> r.operation == 'approve' && r.environment == 'prod' }
        // the release page, archived with the reports, is linked from the build description
        assert new File(workspace, '.mlcd/reports/index.html').isFile()
        assert currentBuild.description.startsWith(
            "<a href=\"${env.BUILD_URL}artifact/.mlcd/reports/index.html\">release page</a>\n")
        assert deployments().collect { Map r -> "${r.environment} ${r.outcome}".toString() } ==
            ['test SUCCEEDED', 'prod SUCCEEDED']
        assert helper.stages.takeRight(6) ==
            ['Deploy test', 'Test test', 'Smoke test', 'Approve prod', 'Deploy prod', 'Smoke prod']
        assert new File(workspace, '.mlcd/reports/test/tests.xml').isFile()
        assert currentBuild.description.contains("prod: ${bundle} deployed")

        // the next release passes on test but its smoke test fails on prod: prod goes back to the first
        ask([op: 'break_prod_smoke'])
        setUp()
        realWorkspace()
        env.BRANCH_NAME = 'main'
        runPipeline()
        assertJobStatusFailure()
        assert helper.pipelineFailure.message.startsWith('mlcdSmokeTest: prod: ')
        assert ask([op: 'active', env: 'prod']).bundleId == bundle
        assert json('.mlcd/smoke-prod.json').outcome == 'ROLLED_BACK'
        assert currentBuild.description.contains("prod: smoke test failed; rolled back to ${bundle} (verified)")
        assert deployments().findAll { Map r -> r.environment == 'prod' }[-1].outcome == 'FAILED_ROLLED_BACK'
        // and mlcdPipeline rolled back the test environment this build had changed too
        assert helper.stages[-1] == 'Rollback test'
        assert ask([op: 'active', env: 'test']).bundleId == bundle
        assert json('.mlcd/unwind-test.json').outcome == 'ROLLED_BACK'
        assert currentBuild.description.contains("test: rolled back to ${bundle} (verified)")
        assert deployments().findAll { Map r -> r.environment == 'test' }[-1].outcome == 'FAILED_ROLLED_BACK'
    }

    @Test
    void pullRequestDeploysOnlyToTest() {
        String prodBefore = ask([op: 'active', env: 'prod']).bundleId
        env.BRANCH_NAME = 'PR-7'
        env.CHANGE_ID = '7'
        runPipeline()
        assert helper.pipelineFailure == null: helper.log.takeRight(30).join('\n')
        String bundle = json('.mlcd/bundle.json').bundleId
        assert ask([op: 'active', env: 'test']).bundleId == bundle
        assert ask([op: 'active', env: 'prod']).bundleId == prodBefore
        assert helper.calls('input').isEmpty()
        assert !helper.calls('sh').any { MethodCall c -> c.env.MLCD_ENV == 'prod' }
    }

    @Test
    void failedTestsOnTestAreRolledBackByMlcdAndNeverReachProd() {
        // a good release first, so that the test environment has a bundle to go back to
        env.BRANCH_NAME = 'main'
        runPipeline()
        assert helper.pipelineFailure == null: helper.log.takeRight(30).join('\n')
        String good = json('.mlcd/bundle.json').bundleId
        assert ask([op: 'active', env: 'prod']).bundleId == good

        // the next release's model misses the (raised) AUC threshold: TEST_MODEL_PERFORMANCE fails on test
        assert ask([op: 'design_variable', name: 'auc_threshold', value: 1.01]).ok
        try {
            setUp()
            realWorkspace()
            env.BRANCH_NAME = 'main'
            runPipeline()
        } finally {
            ask([op: 'design_variable', name: 'auc_threshold', value: 0.78])
        }
        Map tests = json('.mlcd/test-test.json')
        assert tests.outcome == 'ROLLED_BACK' && tests.exitCode == 3
        assertJobStatusUnstable()
        assert ask([op: 'active', env: 'test']).bundleId == good
        assert ask([op: 'active', env: 'prod']).bundleId == good
        assert helper.calls('input').isEmpty()
        assert !helper.calls('sh').any { MethodCall c -> c.env.MLCD_ENV == 'prod' }
        assert !helper.stages.any { String s -> s.endsWith(' prod') }
        assert currentBuild.description.contains("test: tests failed; rolled back to ${good} (verified)")
        // mlcd unwind, asked about test, leaves it as mlcd test already left it
        assert json('.mlcd/unwind-test.json').outcome == 'NOOP'
        assert helper.log.any { String l -> l.startsWith('mlcdPipeline: test: NOOP: mlcd already handled test') }
    }

    @Test
    void aCaBundleCommittedInTheRepositoryReachesEveryAgent() {
        // mlcd refuses a tls.ca_bundle that does not exist (dss/http.py), so every stage must have the file
        Map cfg = helper.yamlParser.call(new File(workspace, 'mlcd.yaml').text) as Map
        ([cfg.design] + (cfg.environments as List)).each { Map node -> node.tls = [ca_bundle: 'certs/ca.pem'] }
        new File(workspace, 'mlcd.yaml').text = JsonOutput.prettyPrint(JsonOutput.toJson(cfg))  // JSON is YAML
        new File(workspace, 'certs').mkdirs()
        new File(workspace, 'certs/ca.pem').text = '-----BEGIN CERTIFICATE-----\nnot used over http\n'
        env.BRANCH_NAME = 'main'
        runPipeline()
        assert helper.pipelineFailure == null: helper.log.takeRight(30).join('\n')
        assert helper.stages.containsAll(['Deploy test', 'Deploy prod', 'Smoke prod'])
        assert helper.workspaces.size() == 3  // release candidate, test, prod: each its own workspace
    }

    @Test
    void doctorChecksEveryNodeReadOnlyAndPublishesItsVerdicts() {
        String prodBefore = ask([op: 'active', env: 'prod']).bundleId
        loadScript('vars/mlcdSetup.groovy').invokeMethod('call', [[venv: new File(helper.libraryRoot, '.venv').path]] as Object[])
        loadScript('vars/mlcdDoctor.groovy').invokeMethod('call', [[:]] as Object[])
        assertJobStatusSuccess()
        Map doctor = json('.mlcd/doctor.json')
        assert doctor.exitCode == 0 && doctor.reports == ['.mlcd/reports/doctor.xml']
        assert (doctor.details.checks as List).collect { Map c -> c.node }.unique() == ['design', 'test', 'prod']
        assert (lastCall('junit').args[0] as Map).testResults == '.mlcd/reports/doctor.xml'
        assert helper.log.any { String l -> l.contains('connectivity, TLS and API prefix') }  // the table, in the console
        assert ask([op: 'active', env: 'prod']).bundleId == prodBefore
    }

    MethodCall lastCall(String name) {
        List<MethodCall> calls = helper.calls(name)
        return calls ? calls[-1] : null
    }
}
