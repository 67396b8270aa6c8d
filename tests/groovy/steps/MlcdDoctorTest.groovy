package steps

import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import harness.MethodCall
import org.junit.Test

/** mlcdDoctor: `mlcd doctor [--env E]` (python/mlcd/stages/doctor.py) with the keys of the nodes it checks. */
class MlcdDoctorTest extends MlcdStepTestBase {
    /** Like the real command: its JUnit report listed in the stage file's reports, on success and failure. */
    @Override
    protected Map fakeCli(String script) {
        Map r = super.fakeCli(script)
        if (script.startsWith('mlcd doctor ')) {
            String file = env.MLCD_ENV && script.contains('--env') ? ".mlcd/doctor-${env.MLCD_ENV}.json" : '.mlcd/doctor.json'
            Map stage = new JsonSlurper().parseText(helper.files[file] as String) as Map
            stage.reports = ['.mlcd/reports/doctor.xml']
            helper.files[file] = JsonOutput.toJson(stage)
            boolean failed = (r.exitValue as int) != 0
            helper.files['.mlcd/reports/doctor.xml'] = "<testsuite name='mlcd doctor' tests='2' failures='${failed ? 1 : 0}'>" +
                "<testcase classname='doctor.design' name='API key'/>" +
                (failed ? "<testcase classname='doctor.prod' name='API key'><failure message='refused'/></testcase>" :
                    "<testcase classname='doctor.prod' name='API key'/>") + '</testsuite>'
        }
        return r
    }

    private MethodCall cliCall() {
        return helper.calls('sh').find { MethodCall c -> helper.shScript(c).contains('mlcd doctor') }
    }

    @Test
    void checksEveryNodeWithItsKeyAndPublishesTheReport() {
        Map cfg = teamConfig()
        cfg.signing = [key_env: 'MLCD_SIGNING_KEY']  // doctor writes no audit trail: no signing key is needed
        helper.yamlDocs['mlcd.yaml'] = cfg
        assert runStep('mlcdDoctor') == null
        assert commands() == ['doctor']
        Map run = cliRuns[0]
        assert run.script == 'mlcd doctor --config "$MLCD_CONFIG_PATH"'
        assert run.vars.DSS_DESIGN_API_KEY == SECRETS['mlcd-churn-design']
        assert run.vars.DSS_TEST_API_KEY == SECRETS['mlcd-churn-test']
        assert run.vars.DSS_PROD_API_KEY == SECRETS['mlcd-churn-prod']
        assert !run.vars.containsKey('MLCD_SIGNING_KEY') && !run.vars.containsKey('MLCD_ENV')
        assert helper.shScript(cliCall()).startsWith('set +x\n')
        assert (lastCall('junit').args[0] as Map).testResults == '.mlcd/reports/doctor.xml'
        assert (lastCall('archiveArtifacts').args[0] as Map).artifacts.contains('.mlcd/*.json')
        assertJobStatusSuccess()
        assertNoSecretLeaked()
    }

    @Test
    void oneEnvironmentBindsOnlyTheDesignKeyAndItsOwn() {
        helper.credentials['churn-prod-key'] = 'other-prod-key-00000001'
        assert runStep('mlcdDoctor', [env: 'prod', credentials: [prod: 'churn-prod-key']]) == null
        Map run = cliRuns[0]
        assert run.script == 'mlcd doctor --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV"'
        assert run.vars.MLCD_ENV == 'prod'
        assert run.vars.DSS_PROD_API_KEY == 'other-prod-key-00000001'
        assert run.vars.DSS_DESIGN_API_KEY == SECRETS['mlcd-churn-design']
        assert !run.vars.containsKey('DSS_TEST_API_KEY')
        assert (lastCall('junit').args[0] as Map).testResults == '.mlcd/reports/doctor.xml'
    }

    @Test
    void aFailingCheckFailsTheBuildWithMlcdsLineAfterPublishingTheReport() {
        cliResult('doctor', null, 6, 'FAILED', '1 check(s) failed; first: prod: API key: refused (HTTP 401)')
        Throwable e = runStep('mlcdDoctor')
        assert e.message == 'mlcdDoctor: 1 check(s) failed; first: prod: API key: refused (HTTP 401) ' +
            '(mlcd exit code 6: node unreachable, TLS failure, or API key refused)'
        assert helper.calls('junit').size() == 1
        assertJobStatusFailure()
        assertNoSecretLeaked()
    }

    @Test
    void anUnknownEnvironmentOrCredentialsTargetStopsTheStepBeforeAnyCommand() {
        Throwable e = runStep('mlcdDoctor', [env: 'prd'])
        assert e.message == "mlcdDoctor: environment 'prd' is not in mlcd.yaml (fix: use one of test, prod)"
        e = runStep('mlcdDoctor', [credentials: [artifacts: 'x']])
        assert e.message.startsWith("mlcdDoctor credentials: unknown argument 'artifacts'")
        assert cliRuns.isEmpty()
    }
}
