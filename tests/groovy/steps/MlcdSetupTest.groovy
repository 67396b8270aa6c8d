package steps

import org.junit.Test

class MlcdSetupTest extends MlcdStepTestBase {
    private String libraryVersion() {
        return new File(helper.libraryRoot, 'resources/mlcd/version.txt').text.trim()
    }

    @Test
    void installsTheLibraryVersionFromPypiIntoAVenvUnderTheAgentsTempDirAndRemembersIt() {
        installedVersion = "mlcd ${libraryVersion()}"
        assert runStep('mlcdSetup') == null
        List<String> scripts = helper.shScripts()
        assert scripts.size() == 2
        assert scripts[0].startsWith('set +x\n')
        assert scripts[0].contains('"$MLCD_PYTHON" -I -m venv "$MLCD_VENV_DIR"')
        assert scripts[0].contains('"$MLCD_VENV_DIR/bin/python" -I -m pip install --quiet --disable-pip-version-check "mlcd==$MLCD_VERSION"')
        assert scripts[1] == '"$MLCD_VENV_DIR/bin/mlcd" --version 2>/dev/null || true'
        Map<String, String> vars = helper.calls('sh')[0].env
        assert vars.MLCD_VERSION == libraryVersion()
        assert vars.MLCD_VENV_DIR == "/ws/team@tmp/mlcd-venv-${libraryVersion()}"
        assert !vars.containsKey('PIP_INDEX_URL') && !vars.containsKey('MLCD_FRESH')
        assert env.MLCD_VENV == "/ws/team@tmp/mlcd-venv-${libraryVersion()}"
        assertJobStatusSuccess()
    }

    @Test
    void indexUrlGoesToPipThroughTheEnvironment() {
        installedVersion = "mlcd ${libraryVersion()}"
        runStep('mlcdSetup', [indexUrl: 'https://nexus.example/repository/pypi/simple'])
        assert helper.calls('sh')[0].env.MLCD_INDEX_URL == 'https://nexus.example/repository/pypi/simple'
        assert !helper.shScripts().any { String s -> s.contains('nexus.example') }
        assert helper.calls('withCredentials').isEmpty()
        assert runShellForReal([MLCD_INDEX_URL: 'https://nexus.example/repository/pypi/simple']) ==
            'https://nexus.example/repository/pypi/simple'
    }

    @Test
    void indexCredentialsWithoutIndexUrlAreRejected() {
        Throwable e = runStep('mlcdSetup', [indexCredentialsId: 'nexus-ci'])
        assert e.message == 'mlcdSetup: indexCredentialsId needs indexUrl: the package index those credentials log in to'
        assert helper.shScripts().isEmpty()
    }

    /** Run mlcdSetup's index part with bash and the given variables; returns the PIP_INDEX_URL it exports. */
    private String runShellForReal(Map<String, String> vars) {
        Script s = loadScript('vars/mlcdSetup.groovy')
        java.lang.reflect.Field f = s.getClass().getDeclaredField('USE_INDEX')
        f.accessible = true
        String script = (f.get(null) as String) + 'printf %s "${PIP_INDEX_URL:-unset}"'
        ProcessBuilder pb = new ProcessBuilder('bash', '-c', script)
        pb.environment().remove('PIP_INDEX_URL')
        pb.environment().putAll(vars + [MLCD_PYTHON: 'python3', MLCD_TMP: System.getProperty('java.io.tmpdir')])
        Process p = pb.start()
        String out = p.inputStream.getText('UTF-8')
        assert p.waitFor() == 0: p.errorStream.getText('UTF-8')
        return out
    }

    @Test
    void pathSourceInstallsALocalCheckoutOrWheel() {
        installedVersion = "mlcd ${libraryVersion()}"
        runStep('mlcdSetup', [source: 'path', path: '/opt/mlcd/dist/mlcd-0.1.0-py3-none-any.whl', venv: '/opt/venvs/mlcd'])
        assert helper.shScripts()[0].endsWith('-I -m pip install --quiet --disable-pip-version-check "$MLCD_SOURCE_PATH"')
        Map<String, String> vars = helper.calls('sh')[0].env
        assert vars.MLCD_SOURCE_PATH == '/opt/mlcd/dist/mlcd-0.1.0-py3-none-any.whl'
        assert env.MLCD_VENV == '/opt/venvs/mlcd'
    }

    @Test
    void versionMismatchBetweenLibraryAndCliStopsTheBuild() {
        installedVersion = 'mlcd 0.0.9'
        Throwable e = runStep('mlcdSetup')
        assert e.message == "mlcdSetup: the mlcd CLI in /ws/team@tmp/mlcd-venv-${libraryVersion()} is 0.0.9 but this library is ${libraryVersion()} " +
            "(fix: install mlcd==${libraryVersion()}, or use the library that matches the CLI, e.g. @Library('mlcd@0.0.9'))"
        assertJobStatusFailure()
        assert env.MLCD_VENV == null
    }

    @Test
    void failedInstallStopsTheBuildWithAHint() {
        helper.addShMock(~/(?s)set \+x\nset -eu.*/, 'ERROR: No matching distribution found for mlcd==0.1.0', 1)
        Throwable e = runStep('mlcdSetup')
        assert e.message.startsWith("mlcdSetup: installing mlcd ${libraryVersion()} from the agent's pip configuration " +
            "(pip.conf, PIP_INDEX_URL) into /ws/team@tmp/mlcd-venv-${libraryVersion()} failed (exit code 1)")
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
