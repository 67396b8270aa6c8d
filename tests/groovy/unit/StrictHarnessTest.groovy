package unit

import harness.BasePipelineTest
import harness.PipelineAbort
import net.sf.json.JSONNull
import org.jenkinsci.plugins.workflow.steps.FlowInterruptedException
import org.junit.Test

/** The harness is as strict as Jenkins where mlcd's defects hid (each behaviour cites its plugin source). */
class StrictHarnessTest extends BasePipelineTest {
    private Object run(String code) {
        return new GroovyShell(binding).evaluate(code)
    }

    @Test
    void envStoresNullAsTheStringNull() {
        run('env.X = null')
        assert env.X == 'null'
    }

    @Test
    void eachNodeHasItsOwnWorkspaceAndOnlyStashesCarryFiles() {
        run("""
            node('a') { writeFile(file: 'f.txt', text: 'hi'); stash(name: 's', includes: 'f.txt') }
            node('b') { assert !fileExists('f.txt'); unstash('s'); assert readFile('f.txt') == 'hi' }
        """)
        try {
            run("node('c') { unstash('missing') }")
            assert false
        } catch (PipelineAbort e) {
            assert e.message.startsWith('No such saved stash')
        }
        try {
            run("node('d') { stash(name: 'empty', includes: 'nothing/**') }")
            assert false
        } catch (PipelineAbort e) {
            assert e.message.startsWith('No files included in stash')
        }
    }

    @Test
    void stashesOutliveTheBuildOnlyWithPreserveStashes() {
        String pipeline = """pipeline { agent any; options { %s }
            stages { stage('a') { steps { writeFile(file: 'x', text: '1'); stash(name: 'x', includes: 'x') } } } }"""
        run(String.format(pipeline, 'disableConcurrentBuilds()'))
        assert helper.stashes.isEmpty()
        run(String.format(pipeline, 'preserveStashes()'))
        assert helper.stashes.containsKey('x')
    }

    @Test
    void timeoutInterruptsTheBodyAndKillsWhatStillRunsAfterTheGracePeriod() {
        helper.addShDuration(~/slow/, 10)
        helper.addShDuration(~/cleanup/, 3)
        Throwable caught = null
        try {
            run("""timeout(time: 5, unit: 'MINUTES') {
                try { sh 'slow' } catch (e) { echo 'cleaning up'; sh 'cleanup'; echo 'cleaned' }
            }""")
        } catch (FlowInterruptedException e) {
            caught = e
        }
        assert caught != null && caught.message == null && caught.result == 'ABORTED'
        assert helper.log.contains('cleaning up') && !helper.log.contains('cleaned')
        assert helper.minutes == 6.0d
    }

    @Test
    void catchErrorCatchesInterruptionsUnlessToldNot() {
        helper.addShDuration(~/slow/, 10)
        run("catchError(buildResult: 'UNSTABLE', stageResult: 'FAILURE') { timeout(time: 1, unit: 'MINUTES') { sh 'slow' } }")
        assert currentBuild.currentResult == 'UNSTABLE'
        try {
            run("catchError(catchInterruptions: false) { timeout(time: 1, unit: 'MINUTES') { sh 'slow' } }")
            assert false
        } catch (FlowInterruptedException e) {
            assert e.result == 'ABORTED'
        }
    }

    @Test
    void aFailureResultAloneSkipsNoStageAnExceptionDoes() {
        run("""pipeline { agent none; stages {
            stage('a') { steps { script { currentBuild.result = 'FAILURE' } } }
            stage('b') { steps { echo 'b ran' } }
            stage('c') { steps { error('boom') } }
            stage('d') { steps { echo 'd ran' } } } }""")
        assert helper.log.contains('b ran') && !helper.log.contains('d ran')
        assert helper.skippedStages == ['d']
    }

    @Test
    void changedFixedAndRegressionFollowThePreviousResult() {
        String pipeline = """pipeline { agent none; stages { stage('a') { steps { script { %s } } } }
            post {
                changed { echo 'changed' }
                fixed { echo 'fixed' }
                regression { echo 'regression' }
            } }"""
        helper.previousResult = 'FAILURE'
        run(String.format(pipeline, "echo 'ok'"))
        assert helper.log.containsAll(['changed', 'fixed']) && !helper.log.contains('regression')
        helper.log.clear()
        currentBuild.reset()
        helper.previousResult = 'SUCCESS'
        run(String.format(pipeline, "unstable('flaky')"))
        assert helper.log.containsAll(['changed', 'regression']) && !helper.log.contains('fixed')
    }

    @Test
    void whenIsEvaluatedInsideTheAgentUnlessBeforeAgent() {
        String pipeline = """pipeline { agent none; stages { stage('a') { agent { label 'x' }
            when { %s expression { false } }
            steps { echo 'a' } } } }"""
        run(String.format(pipeline, ''))
        assert helper.calls('node').size() == 1
        helper.callStack.clear()
        run(String.format(pipeline, 'beforeAgent true;'))
        assert helper.calls('node').isEmpty()
        assert helper.skippedStages == ['a', 'a']
    }

    @Test
    void gitBranchIsSetOnlyInsideADeclarativeAgent() {
        run("""pipeline { agent none; stages {
            stage('a') { agent any; steps { echo "in agent: \${env.GIT_BRANCH}" } }
            stage('b') { steps { script { echo "outside: \${env.GIT_BRANCH}"; node { echo "node: \${env.GIT_BRANCH}" } } } } } }""")
        assert helper.log.containsAll(['in agent: origin/main', 'outside: null', 'node: null'])
    }

    @Test
    void buildingTagOutsideWhenIsAlwaysTruthy() {
        assert run('buildingTag() ? true : false') == true
    }

    @Test
    void withCredentialsChecksTheTypeAndMasksExactValuesOnly() {
        helper.credentials['text'] = 's3cret:v@lue'
        helper.credentials['login'] = [username: 'u', password: 'pw-1234']
        try {
            run("withCredentials([usernamePassword(credentialsId: 'text', usernameVariable: 'U', passwordVariable: 'P')]) { }")
            assert false
        } catch (PipelineAbort e) {
            assert e.message == "Credentials 'text' is of type 'Secret text' where " +
                "'com.cloudbees.plugins.credentials.common.StandardUsernamePasswordCredentials' was expected"
        }
        run("withCredentials([string(credentialsId: 'text', variable: 'S')]) { echo 'key s3cret:v@lue or s3cret%3Av%40lue' }")
        assert helper.log[-1] == 'key **** or s3cret%3Av%40lue'
        run("echo 'after: s3cret:v@lue'")
        assert helper.log[-1] == 'after: s3cret:v@lue'
    }

    @Test
    void readJsonGivesJsonLibNullsUnlessReturnPojo() {
        helper.files['s.json'] = '{"bundleId": null, "details": {"to": null}, "reports": []}'
        Object raw = run("readJSON(file: 's.json')")
        assert raw.bundleId instanceof JSONNull
        assert (raw.bundleId ? 'truthy' : 'falsy') == 'truthy'
        Map pojo = run("readJSON(file: 's.json', returnPojo: true)") as Map
        assert pojo.bundleId == null && pojo.details.to == null && pojo.getClass() == LinkedHashMap
    }
}
