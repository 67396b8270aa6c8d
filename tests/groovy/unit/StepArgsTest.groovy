package unit

import org.junit.Test
import org.mlcd.MlcdCli
import org.mlcd.MlcdConfig
import org.mlcd.StepArgs

class StepArgsTest {
    @Test
    void editDistanceCountsInsertionsDeletionsAndSubstitutions() {
        assert StepArgs.editDistance('env', 'env') == 0
        assert StepArgs.editDistance('enviroment', 'environment') == 1
        assert StepArgs.editDistance('credentialId', 'credentialsId') == 1
        assert StepArgs.editDistance('', 'abc') == 3
        assert StepArgs.editDistance('kitten', 'sitting') == 3
    }

    @Test
    void unknownKeyNamesStepKeyAndClosestValidKey() {
        String msg = StepArgs.unknownKey('mlcdDeploy', [env: 'prod', credentialId: 'x'], ['env', 'config', 'credentialsId'])
        assert msg == "mlcdDeploy: unknown argument 'credentialId' (did you mean 'credentialsId'?); " +
            'valid arguments: env, config, credentialsId'
    }

    @Test
    void validKeysGiveNoMessage() {
        assert StepArgs.unknownKey('mlcdTest', [env: 'test', config: 'a.yaml'], ['env', 'config']) == null
        assert StepArgs.unknownKey('mlcdTest', [:], ['env']) == null
    }

    @Test
    void missingRequiredKeyIsNamed() {
        assert StepArgs.missingKey('mlcdTest', [env: ''], [env: 'the environment']) ==
            "mlcdTest: missing argument 'env' (the environment)"
        assert StepArgs.missingKey('mlcdTest', [env: 'x'], [env: 'the environment']) == null
    }

    @Test
    void anEnvironmentDeployedThroughTheProjectDeployerNamesTheDeployerKeyVariable() {
        Map cfg = MlcdConfig.summarize([
            project: 'CHURN', design: [api_key_env: 'K_DESIGN'], deployer: [url: 'u', api_key_env: 'K_DEPLOYER'],
            environments: [
                [name: 'test', api_key_env: 'K_TEST'],
                [name: 'prod', api_key_env: 'K_PROD', deployer: [infra: 'prod-infra']],
                [name: 'dr', api_key_env: 'K_DR', deployer: [infra: 'dr-infra', api_key_env: 'K_DR_DEPLOYER']],
            ],
        ])
        assert cfg.environments*.deployerKeyEnv == [null, 'K_DEPLOYER', 'K_DR_DEPLOYER']
    }

    @Test
    void configSummaryReadsEnvironmentsInOrder() {
        Map cfg = MlcdConfig.summarize([
            project: 'CHURN', design: [api_key_env: 'K_DESIGN'],
            environments: [
                [name: 'test', api_key_env: 'K_TEST', tests: [prefix: 'TEST_'], smoke: []],
                [name: 'prod', api_key_env: 'K_PROD', approval: true, tests: false, smoke: ['TEST_SMOKE'],
                 rollback_on_failure: false],
            ],
        ])
        assert MlcdConfig.environmentNames(cfg) == ['test', 'prod']
        assert cfg.environments[0] == [name: 'test', apiKeyEnv: 'K_TEST', approval: false, tests: true, smoke: false,
                                       rollbackOnFailure: true]
        assert cfg.environments[1] == [name: 'prod', apiKeyEnv: 'K_PROD', approval: true, tests: false, smoke: true,
                                       rollbackOnFailure: false]
        assert cfg.artifactRepository == null
        assert MlcdConfig.lockName(cfg, 'prod') == 'mlcd-CHURN-prod'
        assert MlcdConfig.defaultCredentialsId(cfg, 'prod') == 'mlcd-churn-prod'
    }

    @Test
    void configProblemsAreOneLine() {
        assert MlcdConfig.problem([design: [api_key_env: 'X'], environments: []], 'mlcd.yaml') ==
            "mlcd.yaml: 'project' (the DSS project key) is missing"
        assert MlcdConfig.problem('text', 'mlcd.yaml').startsWith('mlcd.yaml is not a YAML mapping')
        assert MlcdConfig.problem([project: 'P', design: [api_key_env: 'X'], environments: [[name: 'a']]], 'm.yaml') ==
            "m.yaml: every environment needs 'name' and 'api_key_env'"
    }

    @Test
    void failureMessageGivesStepEnvironmentCliMessageAndExitMeaning() {
        String msg = MlcdCli.failureMessage('mlcdDeploy', 'prod',
            [exitCode: 8, result: [message: 'activation refused: missing connection warehouse'], file: 'x'])
        assert msg == 'mlcdDeploy: prod: activation refused: missing connection warehouse ' +
            '(mlcd exit code 8: DSS refused a step before activation; the environment is unchanged)'
        assert MlcdCli.failureMessage('mlcdBundle', null, [exitCode: 127, result: null, file: '.mlcd/bundle.json']) ==
            'mlcdBundle: mlcd wrote no .mlcd/bundle.json; see the mlcd output above (mlcd exit code 127: mlcd not found: run mlcdSetup first)'
    }
}
