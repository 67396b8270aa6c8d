package steps

import harness.MethodCall
import org.junit.Before
import org.junit.Test

/**
 * mlcd.yaml with `signing:` (python/mlcd/signing.py, docs/security.md): every command that writes or
 * verifies the audit trail or bundle metadata reads the signing key from signing.key_env (exit 2 when it is
 * unset), `mlcd approve` also reads the approval private key from signing.approval_key_env. The steps bind
 * them from Jenkins credentials (default mlcd-<project>-signing, -signing-previous, -approval) with
 * withCredentials, the approval key only around `mlcd approve`; no key reaches a log, argument or file.
 */
class MlcdSigningTest extends MlcdStepTestBase {
    static final String SIGNING_KEY = 'signing-key-5d41402abc4b2a76b9719d911017c592'
    static final String PREVIOUS_KEY = 'previous-key-7d793037a0760186574b0282f2f435e7'
    static final String APPROVAL_KEY = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90'
    /** The commands that need no signing key (read-only, no audit trail). */
    static final List<String> UNSIGNED = ['doctor']

    @Before
    void signingConfigured() {
        Map cfg = teamConfig()
        cfg.signing = [key_env: 'MLCD_SIGNING_KEY', approval_key_env: 'MLCD_APPROVAL_KEY',
                       approval_public_key_file: 'approval-key.pub']
        helper.yamlDocs['mlcd.yaml'] = cfg
        helper.files['approval-key.pub'] = 'ab' * 32
        helper.credentials['mlcd-churn-signing'] = SIGNING_KEY
        helper.credentials['mlcd-churn-approval'] = APPROVAL_KEY
    }

    /** Like the real CLI (signing.signing_keys, sign_approval): exit 2 with one line when a configured key is unset. */
    @Override
    protected Map fakeCli(String script) {
        String command = script.split(' ')[1]
        Map signing = (helper.yamlDocs['mlcd.yaml'] as Map).signing as Map
        if (signing == null) {
            return super.fakeCli(script)
        }
        List<String> needed = []
        if (!(command in UNSIGNED)) {
            needed << (signing.key_env as String)
            if (signing.previous_key_env) {
                needed << (signing.previous_key_env as String)
            }
        }
        if (command == 'approve') {
            needed << (signing.approval_key_env as String)
        }
        String missing = needed.find { String v -> !env.get(v) }
        if (missing) {
            String envName = script.contains('--env') ? env.MLCD_ENV : null
            cliResult(command, envName, 2, 'FAILED', "environment variable ${missing} is not set")
        }
        return super.fakeCli(script)
    }

    private List<String> secrets() {
        return [SIGNING_KEY, PREVIOUS_KEY, APPROVAL_KEY]
    }

    /** No signing or approval key in a step argument, the description, or the console log, in any form. */
    private void assertNoSigningKeyLeaked() {
        assertNoSecretLeaked()
        String console = helper.log.text()
        secrets().each { String s ->
            canaryForms(s).each { String form -> assert !console.contains(form): 'signing key in the console log' }
            helper.callStack.each { MethodCall c -> assert !helper.callArgsToString(c).contains(s) }
            assert !(currentBuild.description ?: '').contains(s)
            helper.calls('sh').findAll { MethodCall c -> c.env.values().contains(s) }.each { MethodCall c ->
                assert helper.shScript(c).startsWith('set +x'): 'sh with a signing key bound runs traced'
            }
        }
    }

    /** Plain, URL-encoded, base64, and every 8-character window (a partial leak). */
    static List<String> canaryForms(String secret) {
        List<String> forms = [secret, URLEncoder.encode(secret, 'UTF-8'), secret.bytes.encodeBase64().toString()]
        for (int i = 0; i + 8 <= secret.length(); i++) {
            forms << secret.substring(i, i + 8)
        }
        return forms.unique()
    }

    private Map varsOf(String command, String envName = null) {
        return cliRuns.find { Map r -> r.command == command && r.env == envName }?.vars as Map
    }

    @Test
    void thePipelineBindsTheSigningKeyForEveryCommandAndTheApprovalKeyOnlyForApprove() {
        Throwable e = runStep('mlcdPipeline', [submitter: 'release-managers'])
        assert e == null && helper.pipelineFailure == null: helper.log.takeRight(10).join('\n')
        assertJobStatusSuccess()
        assert commands() == ['validate', 'bundle', 'publish', 'deploy test', 'test test', 'approve prod',
                              'deploy prod', 'smoke prod']
        cliRuns.each { Map r ->
            assert r.vars.MLCD_SIGNING_KEY == SIGNING_KEY: "mlcd ${r.command} ran without the signing key"
            if (r.command == 'approve') {
                assert r.vars.MLCD_APPROVAL_KEY == APPROVAL_KEY
            } else {
                assert !r.vars.containsKey('MLCD_APPROVAL_KEY'): "the approval key was bound for mlcd ${r.command}"
            }
        }
        List<String> ids = helper.calls('withCredentials').collectMany { MethodCall c ->
            (c.args[0] as List).collect { Object b -> (b as Map).credentialsId as String }
        }
        assert ids.count('mlcd-churn-approval') == 1
        assertNoSigningKeyLeaked()
    }

    @Test
    void aFailureAfterADeployUnwindsWithTheSigningKeyBound() {
        cliResult('smoke', 'prod', 5, 'ROLLBACK_FAILED', 'smoke failed and rollback failed')
        runStep('mlcdPipeline', [submitter: 'release-managers'])
        assertJobStatusFailure()
        Map unwind = varsOf('unwind', 'test')
        assert unwind != null && unwind.MLCD_SIGNING_KEY == SIGNING_KEY && unwind.DSS_TEST_API_KEY
        assert !unwind.containsKey('MLCD_APPROVAL_KEY')
        assertNoSigningKeyLeaked()
    }

    @Test
    void credentialsIdsAndARotationsPreviousKeyComeFromThePipelineArguments() {
        (helper.yamlDocs['mlcd.yaml'] as Map).signing.previous_key_env = 'MLCD_SIGNING_KEY_OLD'
        helper.credentials['churn-signing-2026'] = SIGNING_KEY
        helper.credentials['churn-signing-2025'] = PREVIOUS_KEY
        helper.credentials['churn-approvers-key'] = APPROVAL_KEY
        helper.credentials.remove('mlcd-churn-signing')
        helper.credentials.remove('mlcd-churn-approval')
        runStep('mlcdPipeline', [submitter: 'release-managers',
                                 credentials: [signing: 'churn-signing-2026', 'signing-previous': 'churn-signing-2025',
                                               approval: 'churn-approvers-key']])
        assert helper.pipelineFailure == null: helper.log.takeRight(10).join('\n')
        assert cliRuns.every { Map r -> r.vars.MLCD_SIGNING_KEY_OLD == PREVIOUS_KEY && r.vars.MLCD_SIGNING_KEY == SIGNING_KEY }
        assert varsOf('approve', 'prod').MLCD_APPROVAL_KEY == APPROVAL_KEY
        assertNoSigningKeyLeaked()
    }

    @Test
    void anApprovalRecordedByMlcdDeployBindsTheApprovalKeyOnlyAroundMlcdApprove() {
        env.remove('NODE_NAME')
        assert runStep('mlcdApprove', [env: 'prod', submitter: 'ops']) == null
        assert cliRuns.isEmpty()
        env.NODE_NAME = 'linux-1'
        assert runStep('mlcdDeploy', [env: 'prod', approvalCredentialsId: 'mlcd-churn-approval']) == null
        assert commands() == ['approve prod', 'deploy prod']
        assert varsOf('approve', 'prod').MLCD_APPROVAL_KEY == APPROVAL_KEY
        assert varsOf('deploy', 'prod').MLCD_SIGNING_KEY == SIGNING_KEY
        assert !varsOf('deploy', 'prod').containsKey('MLCD_APPROVAL_KEY')
        assertNoSigningKeyLeaked()
    }

    @Test
    void anApprovalRecordedAtOnceInsideANodeIsSigned() {
        env.NODE_NAME = 'linux-1'
        helper.files['.mlcd/run.json'] = '{}'
        assert runStep('mlcdApprove', [env: 'prod', submitter: 'ops']) == null
        assert commands() == ['approve prod']
        assert varsOf('approve', 'prod').MLCD_APPROVAL_KEY == APPROVAL_KEY
        assert varsOf('approve', 'prod').MLCD_SIGNING_KEY == SIGNING_KEY
        assertNoSigningKeyLeaked()
    }

    @Test
    void everySingleStepBindsTheSigningKey() {
        helper.files['.mlcd/run.json'] = '{}'
        [['mlcdValidate', [:]], ['mlcdBundle', [:]], ['mlcdPublish', [:]], ['mlcdDeploy', [env: 'test']],
         ['mlcdTest', [env: 'test']], ['mlcdSmokeTest', [env: 'prod']], ['mlcdRollback', [env: 'prod']]].each { List s ->
            assert runStep(s[0] as String, s[1] as Map) == null: "${s[0]} failed"
        }
        assert commands() == ['validate', 'bundle', 'publish', 'deploy test', 'test test', 'smoke prod', 'rollback prod']
        assert cliRuns.every { Map r -> r.vars.MLCD_SIGNING_KEY == SIGNING_KEY && !r.vars.containsKey('MLCD_APPROVAL_KEY') }
        assertNoSigningKeyLeaked()
    }

    @Test
    void aMissingSigningCredentialStopsTheStepNamingIt() {
        helper.credentials.remove('mlcd-churn-signing')
        Throwable e = runStep('mlcdValidate', [:])
        assert e.message == "Could not find credentials entry with ID 'mlcd-churn-signing'"
        assert cliRuns.isEmpty()
    }

    @Test
    void withoutSigningInMlcdYamlNoSigningCredentialIsLookedUp() {
        (helper.yamlDocs['mlcd.yaml'] as Map).remove('signing')
        helper.credentials.remove('mlcd-churn-signing')
        helper.credentials.remove('mlcd-churn-approval')
        assert runStep('mlcdPipeline', [submitter: 'release-managers']) == null
        assert helper.pipelineFailure == null
        assert cliRuns.every { Map r -> !r.vars.containsKey('MLCD_SIGNING_KEY') }
    }

    @Test
    void theApprovalPublicKeyFileTravelsWithTheStateToEveryAgent() {
        (helper.yamlDocs['mlcd.yaml'] as Map).signing.approval_public_key_file = 'keys/approval.pub'
        runStep('mlcdPipeline', [submitter: 'release-managers', config: 'mlcd.yaml'])
        assert helper.pipelineFailure == null: helper.log.takeRight(10).join('\n')
        assert helper.calls('stash').findAll { MethodCall c -> (c.args[0] as Map).name == 'mlcd-state' }
            .every { MethodCall c -> ((c.args[0] as Map).includes as String).split(', ').contains('keys/approval.pub') }
    }

    @Test
    void aPullRequestThatChangesTheApprovalPublicKeyStopsBeforeAnyKeyIsBound() {
        env.BRANCH_NAME = 'PR-15'
        env.CHANGE_ID = '15'
        helper.trustedFiles['mlcd.yaml'] = helper.files['mlcd.yaml'] as String
        helper.trustedFiles['approval-key.pub'] = 'ab' * 32
        helper.files['approval-key.pub'] = 'cd' * 32  // the pull request's own key pair would sign its approvals
        Throwable e = runStep('mlcdPipeline', [submitter: 'release-managers']) ?: helper.pipelineFailure
        assert e.message.startsWith('mlcdPipeline: pull request 15 changes approval-key.pub, which decides where API ' +
            'keys are sent or whose approvals count')
        assert helper.calls('withCredentials').isEmpty()
        assert cliRuns.isEmpty()
        assertNoSigningKeyLeaked()
    }
}
