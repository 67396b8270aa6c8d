package steps

import harness.MethodCall
import harness.PipelineAbort
import org.junit.Before
import org.junit.Test

/** The library's own Jenkinsfile through the harness: results reach Jenkins, the upload target is not a parameter. */
class LibraryJenkinsfileTest extends MlcdStepTestBase {
    static final String INDEX_URL = 'https://nexus.internal.example/repository/pypi-internal/'

    @Before
    void libraryBuild() {
        String version = new File(helper.libraryRoot, 'resources/mlcd/version.txt').text.trim()
        helper.files['resources/mlcd/version.txt'] = version + '\n'
        installedVersion = "mlcd ${version}"
        env.GIT_COMMIT = '0123456789abcdef0123456789abcdef01234567'
        helper.credentials['mlcd-package-index'] = [username: 'uploader', password: 'index-upload-pass-0cc175b9']
        helper.credentials['mlcd-package-index-url'] = INDEX_URL
        helper.registerAllowedMethod('library', [Map]) { Map m -> null }
        helper.registerAllowedMethod('legacySCM', [Object]) { Object s -> [$class: 'LegacySCM'] }
        helper.addShMock('ls dist/mlcd-*.whl', "dist/mlcd-${version}-py3-none-any.whl\n", 0)
        // the test stage leaves both suites' JUnit XML behind, as make test-python/test-groovy do
        helper.addShMock(~/make -k test-python test-groovy .*/, '', 0)
        helper.files['build/test-results/python/junit.xml'] = junitXml(0)
        helper.files['build/test-results/groovy/TEST-steps.MlcdPipelineTest.xml'] = junitXml(0)
    }

    private Map shCall(String prefix) {
        MethodCall c = helper.calls('sh').find { MethodCall m -> helper.shScript(m).startsWith(prefix) }
        return c == null ? null : [script: helper.shScript(c), env: c.env]
    }

    @Test
    void everyTestResultReachesJenkinsAndNoSuiteRunsTwice() {
        loadScript('Jenkinsfile')
        assert helper.pipelineFailure == null: helper.log.join('\n')
        List<String> make = helper.shScripts().findAll { String s -> s.contains('make') }
        assert make == ['make setup lint-python lint-groovy',
                        'make -k test-python test-groovy PYTEST_ARGS=--junitxml=build/test-results/python/junit.xml',
                        'rm -rf dist && make wheel']
        assert !helper.shScripts().any { String s -> s.startsWith('scripts/groovy-') || s == 'make test' }
        assert shCall('make -k test-python').env.MLCD_TEST_RESULTS == 'build/test-results'
        List<Map> junit = helper.calls('junit').collect { MethodCall c -> c.args[0] as Map }
        assert junit*.testResults == ['build/test-results/python/*.xml', 'build/test-results/groovy/*.xml']
        assert junit.every { Map m -> !m.containsKey('allowEmptyResults') }
        junit.each { Map m -> assert !helper.glob(m.testResults as String).isEmpty() }
        assert helper.stages.last() == 'Self-check'
        assert helper.skippedStages == ['Publish']
    }

    @Test
    void aTagBuildUploadsToTheIndexUrlFromTheCredentialsStoreNotFromAParameter() {
        env.TAG_NAME = helper.files['resources/mlcd/version.txt'].trim()
        params.PUBLISH_URL = 'https://attacker.example/'
        loadScript('Jenkinsfile')
        assert helper.pipelineFailure == null: helper.log.join('\n')
        Map upload = shCall('set +x\n.venv/bin/python -I -m pip install --quiet twine')
        assert upload.script.endsWith('twine upload --non-interactive dist/*.whl')
        assert upload.env.TWINE_REPOSITORY_URL == INDEX_URL
        assert upload.env.TWINE_USERNAME == 'uploader'
        assert !new File(helper.libraryRoot, 'Jenkinsfile').text.contains('params.')
        helper.callStack.each { MethodCall c -> assert !helper.callArgsToString(c).contains('index-upload-pass') }
    }

    @Test
    void aTagThatDoesNotMatchVersionTxtStopsTheBuild() {
        env.TAG_NAME = '9.9.9'
        loadScript('Jenkinsfile')
        assert helper.pipelineFailure.message.startsWith('tag 9.9.9 does not match resources/mlcd/version.txt')
        assert !helper.shScripts().any { String s -> s.contains('twine') }
    }

    @Test
    void anUntrustedPullRequestBuildPassesWithoutLoadingTheLibraryIntoJenkins() {
        env.CHANGE_ID = '5'
        env.BRANCH_NAME = 'PR-5'
        // pipeline-groovy-lib: a library from the build's own repository at an untrusted revision is refused
        helper.registerAllowedMethod('library', [Map]) { Map m ->
            throw new PipelineAbort("Library 'mlcd' has been modified in an untrusted revision")
        }
        loadScript('Jenkinsfile')
        assert helper.pipelineFailure == null: helper.log.join('\n')
        assert helper.log.any { String l -> l.startsWith('Self-check skipped: pull request 5 is not trusted') }
        assert helper.skippedStages == ['Publish']
        assertJobStatusSuccess()
    }

    @Test
    void anyOtherLibraryFailureStillFailsTheSelfCheck() {
        helper.registerAllowedMethod('library', [Map]) { Map m -> throw new PipelineAbort('No such library mlcd') }
        loadScript('Jenkinsfile')
        assert helper.pipelineFailure.message == 'No such library mlcd'
    }
}
