package steps

import org.junit.Before
import org.junit.Test

/**
 * The release page (python/mlcd/reports/release_page.py: every command rewrites <out-dir>/reports/index.html)
 * is archived with the reports and linked, once, from the build description.
 */
class MlcdReleasePageTest extends MlcdStepTestBase {
    static final String LINK = '<a href="https://ci.example.com/job/churn/42/artifact/.mlcd/reports/index.html">' +
        'release page</a>'

    @Before
    void cliWritesTheReleasePage() {
        env.BUILD_URL = 'https://ci.example.com/job/churn/42/'
        helper.addShMock { String script ->
            String command = script - ~/^set \+x\n/
            if (command.startsWith('mlcd ')) {
                helper.files['.mlcd/reports/index.html'] = '<!DOCTYPE html><title>release</title>'
                return fakeCli(command)
            }
            return null
        }
    }

    @Test
    void thePipelineLinksTheReleasePageOnceFirstInTheDescription() {
        assert runStep('mlcdPipeline', [submitter: 'release-managers']) == null
        assert helper.pipelineFailure == null
        assert currentBuild.description ==
            "${LINK}\nbundle ${BUNDLE}\ntest: ${BUNDLE} deployed\nprod: ${BUNDLE} deployed".toString()
        assert helper.calls('archiveArtifacts').every { c -> (c.args[0] as Map).artifacts.contains('.mlcd/reports/**') }
    }

    @Test
    void aFailedStepStillLinksThePageThatSaysWhatHappened() {
        cliResult('deploy', 'test', 4, 'ROLLED_BACK', 'activation failed')
        runStep('mlcdDeploy', [env: 'test'])
        assertJobStatusFailure()
        assert currentBuild.description.startsWith("${LINK}\ntest: deployment failed; rolled back to ")
    }

    @Test
    void withoutAJenkinsUrlTheLinkIsRelativeToTheBuildPage() {
        env.remove('BUILD_URL')
        assert runStep('mlcdValidate') == null
        assert currentBuild.description == '<a href="artifact/.mlcd/reports/index.html">release page</a>'
    }

    @Test
    void noReleasePageNoLink() {
        helper.addShMock { String script ->
            String command = script - ~/^set \+x\n/
            return command.startsWith('mlcd ') ? fakeCli(command) : null
        }
        assert runStep('mlcdValidate') == null
        assert currentBuild.description == null
    }
}
