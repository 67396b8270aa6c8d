package steps

import groovy.json.JsonOutput
import org.junit.Test

/** mlcdApiDeploy: bindings, the command line, the published reports and what a revert leaves in the description. */
class MlcdApiDeployTest extends MlcdStepTestBase {
    static final String VERSION = 'churn_20261123T120000Z_abc1234_b42'
    static final String SERVICE_KEY = 'service-key-7215ee9c'

    /** exit, outcome and details of the next `mlcd api deploy` */
    Map apiResult = [exit: 0, outcome: 'SUCCESS', message: 'deployed', details: [:]]

    @Override
    protected Map fakeCli(String script) {
        if (!script.startsWith('mlcd api ')) {
            return super.fakeCli(script)
        }
        cliRuns << [command: 'api', env: env.MLCD_ENV, script: script, vars: new LinkedHashMap(env)]
        String xml = ".mlcd/reports/api-${env.MLCD_API_SERVICE}-${env.MLCD_ENV}.xml"
        helper.files[xml] = junitXml(apiResult.exit == 0 ? 0 : 1)
        String file = ".mlcd/api-deploy-${env.MLCD_API_SERVICE}-${env.MLCD_ENV}.json"
        helper.files[file] = JsonOutput.toJson([stage: "api-deploy-${env.MLCD_API_SERVICE}", environment: env.MLCD_ENV,
                                                outcome: apiResult.outcome, exitCode: apiResult.exit,
                                                bundleId: VERSION, message: apiResult.message,
                                                reports: [xml], details: apiResult.details])
        return [stdout: "[mlcd api] ${apiResult.outcome}", exitValue: apiResult.exit]
    }

    private void configureService(Map service) {
        Map doc = helper.yamlDocs['mlcd.yaml'] as Map
        doc.api_services = [services: [[id: 'churn', endpoints: ['predict_churn'],
                                        environments: [prod: [infra: 'api-prod']]] + service]]
        helper.credentials['mlcd-churn-api-churn'] = SERVICE_KEY
    }

    @Test
    void deployBindsBothKeysRunsTheCommandAndPublishesTheGateReport() {
        configureService([api_key_env: 'CHURN_API_KEY'])
        assert runStep('mlcdApiDeploy', [service: 'churn', env: 'prod']) == null
        assert cliRuns[0].script ==
            'mlcd api deploy --config "$MLCD_CONFIG_PATH" --service "$MLCD_API_SERVICE" --env "$MLCD_ENV"'
        assert cliRuns[0].vars.DSS_DESIGN_API_KEY == SECRETS['mlcd-churn-design']
        assert cliRuns[0].vars.CHURN_API_KEY == SERVICE_KEY
        assert helper.calls('junit').collect { it.args[0].testResults } == ['.mlcd/reports/api-churn-prod.xml']
        assert currentBuild.description == "churn on prod: ${VERSION} deployed, gates passed"
        assertNoSecretLeaked()
        assertJobStatusSuccess()
    }

    @Test
    void aRevertedVersionIsDescribedAndFailsTheBuild() {
        configureService([:])
        apiResult = [exit: 3, outcome: 'ROLLED_BACK', message: 'load gate failed: p95 412 ms over 150 ms',
                     details: [revertedTo: 'churn_old']]
        Throwable e = runStep('mlcdApiDeploy', [service: 'churn', env: 'prod', version: 'churn_v2'])
        assert cliRuns[0].script.endsWith('--version "$MLCD_API_VERSION"')
        assert cliRuns[0].vars.MLCD_API_VERSION == 'churn_v2'
        assert !cliRuns[0].vars.containsKey('CHURN_API_KEY')
        assert currentBuild.description == "churn on prod: ${VERSION} failed; reverted to churn_old (verified)"
        assert e.message.startsWith('mlcdApiDeploy: prod: load gate failed: p95 412 ms over 150 ms (mlcd exit code 3')
        assertJobStatusFailure()
    }

    @Test
    void aFailedRevertAsksForAPerson() {
        configureService([:])
        apiResult = [exit: 5, outcome: 'ROLLBACK_FAILED', message: 'revert to churn_old failed', details: [:]]
        runStep('mlcdApiDeploy', [service: 'churn', env: 'prod'])
        assert currentBuild.description == 'churn on prod: REVERT FAILED, a person must act'
        assertJobStatusFailure()
    }

    @Test
    void anUnknownServiceOrAMissingArgumentStopsBeforeAnythingRuns() {
        configureService([:])
        assert runStep('mlcdApiDeploy', [service: 'chrun', env: 'prod']).message ==
            "mlcdApiDeploy: API service 'chrun' is not in api_services of mlcd.yaml (fix: use one of churn)"
        assert runStep('mlcdApiDeploy', [env: 'prod']).message.contains("service: 'churn'")
        assert runStep('mlcdApiDeploy', [service: 'churn', env: 'prod', verison: 'x']).message.contains('version')
        assert cliRuns.isEmpty()
    }
}
