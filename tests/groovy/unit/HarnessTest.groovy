package unit

import harness.BasePipelineTest
import harness.PipelineAbort
import harness.SandboxRejection
import org.junit.Test

/** The harness itself: declarative interpretation, sh fakes, credentials and call stack. */
class HarnessTest extends BasePipelineTest {
    private static final String FIXTURE = 'tests/groovy/unit/fixtures/declarativeFeatures.groovy'

    private void run(Map args) {
        loadScript(FIXTURE).invokeMethod('call', [args] as Object[])
    }

    @Test
    void declarativeAgentEnvironmentWhenAndPostOnSuccess() {
        env.BRANCH_NAME = 'main'
        run([:])
        assert helper.stages == ['Always', 'Main only', 'Maybe fail', 'After']
        assert helper.skippedStages == ['Not a PR']
        assert helper.log == ['hello from linux', 'on main', 'after', 'post always', 'post success']
        assert helper.pipelineOptions*.methodName == ['disableConcurrentBuilds']
        assert env.GREETING == null
        assertJobStatusSuccess()
    }

    @Test
    void nestedWhenConditions() {
        env.BRANCH_NAME = 'release/2'
        run([:])
        assert helper.stages.contains('Not a PR')
        assert !helper.stages.contains('Main only')
        helper.stages.clear()
        env.CHANGE_ID = '5'
        run([force: true])
        assert !helper.stages.contains('Not a PR')
        env.remove('CHANGE_ID')
        env.BRANCH_NAME = 'dev'
        helper.stages.clear()
        run([force: true])
        assert helper.stages.contains('Not a PR')
    }

    @Test
    void failingShSkipsLaterStagesAndRunsFailurePosts() {
        helper.addShMock('exit 1', '', 1)
        run([fail: true])
        assert helper.pipelineFailure.message == 'script returned exit code 1'
        assert helper.skippedStages.contains('After')
        assert helper.log.takeRight(4) == ['stage failed', 'post always', 'post failure', 'ERROR: script returned exit code 1']
        assertJobStatusFailure()
    }

    @Test
    void unstableRunsUnstablePost() {
        run([unstable: true])
        assert helper.stages.contains('After')
        assert helper.log.contains('post unstable')
        assertJobStatusUnstable()
    }

    @Test
    void shFakesLastMatchWinsAndReturnStatusOrStdout() {
        helper.addShMock('make', 'built', 0)
        helper.addShMock(~/make .*/, 'target', 2)
        helper.addShMock { String s -> s == 'make deploy' ? [stdout: 'deployed', exitValue: 0] : null }
        Script s = loadScript(FIXTURE)
        assert s.sh(script: 'make', returnStdout: true) == 'built'
        assert s.sh(script: 'make lint', returnStatus: true) == 2
        assert s.sh(script: 'make deploy', returnStdout: true) == 'deployed'
        try {
            s.sh('make lint')
            assert false
        } catch (PipelineAbort e) {
            assert e.message == 'script returned exit code 2'
        }
        assert helper.shScripts() == ['make', 'make lint', 'make deploy', 'make lint']
    }

    @Test
    void credentialsAreBoundOnlyInsideTheBlockAndCallsAreRecorded() {
        helper.credentials['k'] = 's3cret'
        Script s = loadScript(FIXTURE)
        s.withCredentials([s.string(credentialsId: 'k', variable: 'KEY')]) {
            s.sh 'use $KEY'
        }
        assert helper.calls('sh')[0].env.KEY == 's3cret'
        assert env.KEY == null
        assert helper.callArgsToString(helper.calls('withCredentials')[0]) ==
            '[{"$class":"StringBinding","credentialsId":"k","variable":"KEY"}], groovy.lang.Closure'
        assert helper.calls('sh')[0].stackDepth == 1
        helper.registerAllowedMethod('sh', [String]) { String script -> 'overridden' }
        assert s.sh('x') == 'overridden'
    }
    @Test
    void envAllowsPropertyAccessButRejectsSubscriptsLikeTheSandbox() {
        Script s = new GroovyShell(binding).parse(
            "env.A = 'x'; env.setProperty('B_' + 'C', 'y'); return [env.A, env.getProperty('B_C')]")
        assert s.run() == ['x', 'y']
        ['env["A"]', 'env["A"] = "z"', 'String n = "A"; env[n]', 'env["${1}"]'].each { String code ->
            try {
                new GroovyShell(binding).evaluate(code)
                assert false: "${code} was accepted"
            } catch (SandboxRejection e) {
                assert e.message.startsWith('Scripts not permitted to use staticMethod ' +
                    'org.codehaus.groovy.runtime.DefaultGroovyMethods')
            }
        }
        assert env.A == 'x'
    }
}
