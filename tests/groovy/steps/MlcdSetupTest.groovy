package steps

import org.junit.Test

class MlcdSetupTest extends MlcdStepTestBase {
    private String libraryVersion() {
        return new File(helper.libraryRoot, 'resources/mlcd/version.txt').text.trim()
    }

    @Test
    void installsTheLibraryVersionFromPypiIntoAWorkspaceVenvAndRemembersIt() {
        installedVersion = "mlcd ${libraryVersion()}"
        assert runStep('mlcdSetup') == null
        List<String> scripts = helper.shScripts()
        assert scripts.size() == 2
        assert scripts[0].contains('-m pip install --quiet --disable-pip-version-check "mlcd==$MLCD_VERSION"')
        assert scripts[1] == '"$MLCD_VENV_DIR/bin/mlcd" --version 2>/dev/null || true'
        Map<String, String> vars = helper.calls('sh')[0].env
        assert vars.MLCD_VERSION == libraryVersion()
        assert vars.MLCD_VENV_DIR == '/ws/team/.mlcd-venv'
        assert !vars.containsKey('PIP_INDEX_URL')
        assert env.MLCD_VENV == '/ws/team/.mlcd-venv'
        assertJobStatusSuccess()
    }

    @Test
    void indexUrlGoesToPipThroughTheEnvironment() {
        installedVersion = "mlcd ${libraryVersion()}"
        runStep('mlcdSetup', [indexUrl: 'https://nexus.example/repository/pypi/simple'])
        assert helper.calls('sh')[0].env.PIP_INDEX_URL == 'https://nexus.example/repository/pypi/simple'
        assert !helper.shScripts().any { String s -> s.contains('nexus.example') }
    }

    @Test
    void pathSourceInstallsALocalCheckoutOrWheel() {
        installedVersion = "mlcd ${libraryVersion()}"
        runStep('mlcdSetup', [source: 'path', path: '/opt/mlcd/dist/mlcd-0.1.0-py3-none-any.whl', venv: '/opt/venvs/mlcd'])
        assert helper.shScripts()[0].endsWith('-m pip install --quiet --disable-pip-version-check "$MLCD_SOURCE_PATH"')
        Map<String, String> vars = helper.calls('sh')[0].env
        assert vars.MLCD_SOURCE_PATH == '/opt/mlcd/dist/mlcd-0.1.0-py3-none-any.whl'
        assert env.MLCD_VENV == '/opt/venvs/mlcd'
    }

    @Test
    void versionMismatchBetweenLibraryAndCliStopsTheBuild() {
        installedVersion = 'mlcd 0.0.9'
        Throwable e = runStep('mlcdSetup')
        assert e.message == "mlcdSetup: the mlcd CLI in /ws/team/.mlcd-venv is 0.0.9 but this library is ${libraryVersion()} " +
            "(fix: install mlcd==${libraryVersion()}, or use the library that matches the CLI, e.g. @Library('mlcd@0.0.9'))"
        assertJobStatusFailure()
        assert env.MLCD_VENV == null
    }

    @Test
    void failedInstallStopsTheBuildWithAHint() {
        helper.addShMock(~/(?s)set -eu.*/, 'ERROR: No matching distribution found for mlcd==0.1.0', 1)
        Throwable e = runStep('mlcdSetup')
        assert e.message.startsWith("mlcdSetup: installing mlcd ${libraryVersion()} from PyPI into /ws/team/.mlcd-venv failed (exit code 1)")
        assert env.MLCD_VENV == null
    }

    @Test
    void unknownSourceAndUnknownKeyNameTheClosestValidOne() {
        assert runStep('mlcdSetup', [source: 'pip']).message.startsWith(
            "mlcdSetup: source 'pip' is not supported (did you mean 'pypi'?)")
        assert runStep('mlcdSetup', [indexURL: 'x']).message.startsWith(
            "mlcdSetup: unknown argument 'indexURL' (did you mean 'indexUrl'?)")
        assert runStep('mlcdSetup', [source: 'path']).message ==
            "mlcdSetup: source 'path' needs path: a local checkout of mlcd or a wheel file"
        assert helper.shScripts().isEmpty()
    }
}
