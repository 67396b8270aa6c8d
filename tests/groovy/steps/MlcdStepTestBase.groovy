package steps

import groovy.json.JsonOutput
import harness.BasePipelineTest
import harness.MethodCall
import org.junit.Before

/**
 * Shared fixture of the step tests: a team's mlcd.yaml (design, test, prod with approval),
 * credentials in the Jenkins store, a fake `mlcd` CLI that writes its stage file and reports like
 * the real one, and the fake venv install of mlcdSetup.
 */
abstract class MlcdStepTestBase extends BasePipelineTest {
    static final String BUNDLE = 'CHURN_20261123T120000Z_abc1234_b42'
    static final String PREVIOUS = 'CHURN_20261120T090000Z_0ff1ce0_b41'
    static final Map<String, String> SECRETS = [
        'mlcd-churn-design': 'design-key-d41d8cd9', 'mlcd-churn-test': 'test-key-8f00b204',
        'mlcd-churn-prod': 'prod-key-e9800998',
    ]
    static final String ARTIFACT_PASSWORD = 'artifact-pass-ecf8427e'
    static final String INDEX_PASSWORD = 'index-pass-1f3870be'

    /** Every mlcd command that ran, as [command, env, script, envVars]. */
    List<Map> cliRuns = []
    /** command or command-env -> [exit: n, outcome:, message:, failedTests: n] */
    Map<String, Map> cliResults = [:]
    String installedVersion = 'mlcd 0.1.0'

    @Before
    void setUpMlcd() {
        helper.yamlDocs['mlcd.yaml'] = teamConfig()
        helper.files['mlcd.yaml'] = '# read through yamlDocs'
        helper.credentials.putAll(SECRETS)
        helper.credentials['mlcd-churn-artifacts'] = [username: 'ci-bot', password: ARTIFACT_PASSWORD]
        helper.credentials['nexus-ci'] = [username: 'ci-bot', password: INDEX_PASSWORD]
        helper.addShMock { String script ->
            if (script.startsWith('set +x\nset -eu')) {
                return [stdout: '', exitValue: 0]
            }
            if (script.contains('/bin/mlcd" --version')) {
                return [stdout: installedVersion + '\n', exitValue: 0]
            }
            String command = script - ~/^set \+x\n/
            if (command.startsWith('mlcd ')) {
                return fakeCli(command)
            }
            return null
        }
    }

    static Map teamConfig() {
        return [
            project: 'CHURN',
            design: [url: 'http://127.0.0.1:11200', api_key_env: 'DSS_DESIGN_API_KEY'],
            artifact_repository: [url: 'http://127.0.0.1:8081/b', username_env: 'ARTIFACTS_USER',
                                  password_env: 'ARTIFACTS_PASSWORD'],
            environments: [
                [name: 'test', url: 'http://127.0.0.1:11201', api_key_env: 'DSS_TEST_API_KEY',
                 tests: [prefix: 'TEST_'], smoke: []],
                [name: 'prod', url: 'http://127.0.0.1:11202', api_key_env: 'DSS_PROD_API_KEY', approval: true,
                 tests: false, smoke: ['TEST_SMOKE']],
            ],
        ]
    }

    /** Make `mlcd <command> [--env env]` end with this exit code and outcome (details: replace the CLI's). */
    void cliResult(String command, String envName, int exit, String outcome, String message = 'failed', int failedTests = 0,
                   Map details = null) {
        cliResults[envName ? "${command}-${envName}".toString() : command] =
            [exit: exit, outcome: outcome, message: message, failedTests: failedTests, details: details]
    }

    /**
     * A stage file with what the real CLI writes (python/mlcd/stages/*.py, python/mlcd/release/*.py): test and
     * smoke list their JUnit and HTML reports and put summary/cases in details, plus rolledBackTo
     * when they rolled back; validate lists its JUnit report; deploy names previousBundleId and
     * activeBundleId on success and rolledBackTo when it rolled back; rollback names from/to/smoke/reason.
     */
    protected Map fakeCli(String script) {
        String command = script.split(' ')[1]
        String envName = script.contains('--env') ? env.MLCD_ENV : null
        cliRuns << [command: command, env: envName, script: script, vars: new LinkedHashMap(env)]
        String key = envName ? "${command}-${envName}" : command
        // a verified rollback ends with exit 0 and outcome ROLLED_BACK (stages/rollback.py)
        Map r = cliResults[key] ?: [exit: 0, outcome: command in ['rollback', 'unwind'] ? 'ROLLED_BACK' : 'SUCCESS',
                                    message: 'ok', failedTests: 0]
        String file = envName ? ".mlcd/${key}.json" : ".mlcd/${command}.json"
        List<String> reports = []
        Map details = [:]
        boolean gateRan = r.outcome in ['SUCCESS', 'GATE_FAILED', 'ROLLED_BACK', 'ROLLBACK_FAILED', 'NOTHING_TO_ROLL_BACK']
        if (command == 'test' && r.exit == 4) {
            gateRan = false  // tests that could not complete were rolled back: no report (release/gate.py, node-error row of docs/decisions.md)
        }
        if (command in ['test', 'smoke'] && gateRan) {
            String kind = command == 'test' ? 'tests' : 'smoke'
            String xml = ".mlcd/reports/${envName}/${kind}.xml"
            helper.files[xml] = junitXml(r.failedTests as int)
            reports = [xml, ".mlcd/reports/${envName}/${command == 'test' ? 'report' : 'smoke'}.html".toString()]
            details = [summary: "${3 - (r.failedTests as int)} of 3 passed".toString(), cases: [:]]
        } else if (command == 'validate' && r.outcome in ['SUCCESS', 'GATE_FAILED']) {
            helper.files['.mlcd/reports/validate.xml'] = junitXml(r.failedTests as int)
            reports = ['.mlcd/reports/validate.xml']
        } else if (command == 'deploy' && r.outcome == 'SUCCESS') {
            details = [previousBundleId: PREVIOUS, activeBundleId: BUNDLE]
        } else if (command == 'rollback' && r.outcome == 'ROLLED_BACK') {
            details = [from: BUNDLE, to: PREVIOUS, smoke: ['TEST_SMOKE'], reason: env.MLCD_ROLLBACK_REASON]
        } else if (command == 'unwind' && r.outcome == 'ROLLED_BACK') {
            details = [rolledBackTo: PREVIOUS, smoke: ['TEST_SMOKE'], reason: env.MLCD_UNWIND_REASON]
        }
        if (r.outcome == 'ROLLED_BACK' && command in ['deploy', 'test', 'smoke']) {
            if (!gateRan && command != 'deploy') {
                details = [error: r.message, errorCategory: 'dss']
            }
            details.rolledBackTo = PREVIOUS
        }
        if (r.details != null) {
            details = r.details as Map
        }
        helper.files[file] = JsonOutput.toJson([stage: command, environment: envName, outcome: r.outcome,
                                                exitCode: r.exit, bundleId: BUNDLE, message: r.message,
                                                reports: reports, details: details])
        return [stdout: "[mlcd ${command}] ${r.outcome}", exitValue: r.exit]
    }

    static String junitXml(int failed) {
        String cases = (1..3).collect { int i ->
            i <= failed ? "<testcase name='TEST_${i}'><failure message='scenario failed'/></testcase>" :
                "<testcase name='TEST_${i}'/>"
        }.join('')
        return "<testsuite name='churn' tests='3' failures='${failed}'>${cases}</testsuite>"
    }

    /** The mlcd commands that ran, as 'command[ env]'. */
    List<String> commands() {
        return cliRuns.collect { Map r -> r.env ? "${r.command} ${r.env}".toString() : r.command as String }
    }

    /** No secret value appears in any recorded step argument, sh script, or log line. */
    void assertNoSecretLeaked() {
        List<String> secrets = SECRETS.values().toList() + [ARTIFACT_PASSWORD, INDEX_PASSWORD]
        helper.callStack.each { MethodCall c ->
            String text = helper.callArgsToString(c)
            secrets.each { String s -> assert !text.contains(s): "secret in ${c.methodName} call" }
        }
        helper.log.each { String line -> secrets.each { String s -> assert !line.contains(s) } }
        // forms Jenkins' masking may not know (credentials-binding masks exact, shell-quoted and base64 forms only)
        String console = helper.log.text()
        secrets.each { String s ->
            [URLEncoder.encode(s, 'UTF-8'), s.bytes.encodeBase64().toString()].each { String form ->
                assert !console.contains(form): 'a secret, encoded, in the console log'
            }
        }
        // Jenkins runs sh with -x: every script with a secret in its environment starts with set +x
        helper.calls('sh').each { MethodCall c ->
            if (secrets.any { String s -> c.env.values().contains(s) }) {
                assert helper.shScript(c).startsWith('set +x'): "sh with a secret bound runs traced: ${helper.shScript(c)}"
            }
        }
        String desc = currentBuild.description ?: ''
        secrets.each { String s -> assert !desc.contains(s) }
    }

    /**
     * Run `step` where it must stop the build: checks that it did, that the build is FAILURE and that
     * the build description is exactly `description`; returns the error for the caller's message checks.
     */
    Throwable runFailingStep(String step, Map args, String description) {
        Throwable e = runStep(step, args)
        assert e != null: "${step} did not stop the build"
        assert currentBuild.description == description
        assertJobStatusFailure()
        return e
    }

    MethodCall lastCall(String name) {
        List<MethodCall> calls = helper.calls(name)
        return calls ? calls[-1] : null
    }
}
