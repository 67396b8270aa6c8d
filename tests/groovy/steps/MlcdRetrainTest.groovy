package steps

import org.junit.Test

/** mlcdRetrain: thin over `mlcd retrain`; the build result follows the exit code. */
class MlcdRetrainTest extends MlcdStepTestBase {
    @Test
    void keptChallengerIsDescribedAndBindsTheEnvironmentKey() {
        assert runStep('mlcdRetrain', [env: 'prod']) == null
        assert cliRuns[0].script == 'mlcd retrain --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV"'
        assert cliRuns[0].vars.DSS_PROD_API_KEY == SECRETS['mlcd-churn-prod']
        assert currentBuild.description == 'prod: retrained, new model version kept (verified)'
        assertJobStatusSuccess()
        assertNoSecretLeaked()
    }

    @Test
    void oneModelIsPassedAsAVariable() {
        runStep('mlcdRetrain', [env: 'prod', model: 'churn_model'])
        assert cliRuns[0].script.endsWith('--model "$MLCD_MODEL"')
        assert cliRuns[0].vars.MLCD_MODEL == 'churn_model'
    }

    @Test
    void ifDriftAddsTheFlagAndNoDriftIsDescribed() {
        cliResult('retrain', 'prod', 0, 'NOOP', 'drift 0.1 is not above the threshold 0.2: no retrain')
        assert runStep('mlcdRetrain', [env: 'prod', ifDrift: true, model: 'churn_model']) == null
        assert cliRuns[0].script == 'mlcd retrain --config "$MLCD_CONFIG_PATH" --env "$MLCD_ENV" --model "$MLCD_MODEL" --if-drift'
        assert currentBuild.description == 'prod: no drift, not retrained'
        assertJobStatusSuccess()
    }

    @Test
    void losingChallengerMakesTheBuildUnstable() {
        cliResult('retrain', 'prod', 3, 'GATE_FAILED', 'churn_model: challenger 17 kept out (auc 0.79 vs champion 0.8)')
        assert runStep('mlcdRetrain', [env: 'prod']) == null
        assert currentBuild.description == 'prod: retrained, the champion model stays'
        assertJobStatusUnstable()
    }

    @Test
    void restoredChampionFailsTheBuild() {
        cliResult('retrain', 'prod', 4, 'ROLLED_BACK', 'churn_model: not active after activating it')
        runFailingStep('mlcdRetrain', [env: 'prod'], 'prod: retrain failed; champion model active again (verified)')
    }

    @Test
    void unverifiedModelStateAsksForAPerson() {
        cliResult('retrain', 'prod', 5, 'ROLLBACK_FAILED', 'restoring champion initial failed')
        Throwable e = runFailingStep('mlcdRetrain', [env: 'prod'],
            'prod: retrain failed and the MODEL STATE IS UNVERIFIED, a person must act')
        assert e.message.contains('restoring champion initial failed')
    }

    @Test
    void unknownKeyStopsBeforeRunning() {
        Throwable e = runStep('mlcdRetrain', [env: 'prod', modle: 'x'])
        assert e.message.contains('mlcdRetrain') && e.message.contains('model')
        assert cliRuns.isEmpty()
    }
}
