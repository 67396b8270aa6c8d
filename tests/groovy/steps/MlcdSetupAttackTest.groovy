package steps

import harness.RealShell
import org.junit.After
import org.junit.Before
import org.junit.Test

/**
 * mlcdSetup's scripts run for real, as Jenkins runs them (`sh -xe`, RealShell), in a real workspace,
 * with a stand-in Python that creates venvs and records what pip would get (it never installs): the
 * attacks of issue 12 items 4 and 5 reproduced.
 */
class MlcdSetupAttackTest extends MlcdStepTestBase {
    static final String PASSWORD = 'p@ss:w/rd 5eb63bbb'
    File root
    File workspace
    File pipLog
    File pwned

    @Before
    void realWorkspace() {
        root = File.createTempDir('mlcd-setup-attack', '')
        workspace = new File(root, 'ws')
        workspace.mkdirs()
        helper.workspace = workspace
        env.WORKSPACE = workspace.path
        pipLog = new File(root, 'pip.log')
        pwned = new File(root, 'PWNED')
        String version = new File(helper.libraryRoot, 'resources/mlcd/version.txt').text.trim()
        // python3 -I -m venv DIR makes DIR/bin/{python,mlcd}; -m pip install records PIP_* and the pip.conf
        File python = new File(root, 'python')
        python.text = """#!/bin/sh
[ "\$1" = "-I" ] && isolated=1 && shift
if [ "\$1" = "-c" ]; then exec python3 -I "\$@"; fi
if [ "\$1 \$2" = "-m venv" ]; then
  mkdir -p "\$3/bin"; cp "\$0" "\$3/bin/python"
  printf '#!/bin/sh\\necho "mlcd ${version}"\\n' > "\$3/bin/mlcd"; chmod +x "\$3/bin/mlcd"
  echo "venv \$3 isolated=\${isolated:-0}" >> '${pipLog}'; exit 0
fi
if [ "\$1 \$2" = "-m pip" ]; then
  echo "pip isolated=\${isolated:-0} PIP_INDEX_URL=\${PIP_INDEX_URL:-}" >> '${pipLog}'
  if [ -n "\${PIP_CONFIG_FILE:-}" ]; then stat -c 'mode %a' "\$PIP_CONFIG_FILE" >> '${pipLog}'; cat "\$PIP_CONFIG_FILE" >> '${pipLog}'; fi
  exit 0
fi
exit 3
"""
        python.setExecutable(true)
        helper.shExecutor = { String script, Map<String, String> vars, boolean returnStdout ->
            RealShell.run(helper.workspace, script, vars, returnStdout, 60)
        }
        helper.credentials['nexus-ci'] = [username: 'ci-bot', password: PASSWORD]
        installedVersion = null
    }

    @After
    void removeWorkspace() {
        root?.deleteDir()
    }

    private Throwable setup(Map args = [:]) {
        return runStep('mlcdSetup', [python: new File(root, 'python').path] + args)
    }

    static List<String> forms(String secret) {
        return [secret, URLEncoder.encode(secret, 'UTF-8'), URLEncoder.encode(secret, 'UTF-8').replace('+', '%20'),
                secret.bytes.encodeBase64().toString()]
    }

    @Test
    void theIndexPasswordNeverAppearsInTheTracedConsoleLogNorOnACommandLine() {
        assert setup(indexUrl: 'https://nexus.example/repository/pypi/simple', indexCredentialsId: 'nexus-ci') == null:
            helper.log.text()
        String console = helper.log.text()
        forms(PASSWORD).each { String f -> assert !console.contains(f): "index password (${f}) in the console log" }
        assert console.contains('+ set +x')  // the trace was on: the script turned it off first
        String pip = pipLog.text
        assert pip.contains('pip isolated=1 PIP_INDEX_URL=\n')
        assert pip.contains('mode 600')
        assert pip.contains('index-url = https://ci-bot:p%40ss%3Aw%2Frd%205eb63bbb@nexus.example/repository/pypi/simple')
        // the pip.conf was in a temporary directory, removed when the script ended
        assert !new File(workspace.path + '@tmp').listFiles().any { File f -> f.name.startsWith('mlcd-pip.') }
        assertNoSecretLeaked()
    }

    @Test
    void aCommittedFakeMlcdInTheCheckoutIsNeverRun() {
        File fake = new File(workspace, '.mlcd-venv/bin/mlcd')
        fake.parentFile.mkdirs()
        String version = new File(helper.libraryRoot, 'resources/mlcd/version.txt').text.trim()
        fake.text = "#!/bin/sh\ntouch '${pwned}'\necho 'mlcd ${version}'\n"
        fake.setExecutable(true)
        assert setup() == null: helper.log.text()
        assert !pwned.exists(): 'the fake mlcd committed in the checkout ran'
        assert env.MLCD_VENV.startsWith(workspace.path + '@tmp/')
        assert pipLog.text.contains("venv ${env.MLCD_VENV} isolated=1")
        assert runStep('mlcdSetup', [venv: "${workspace}/.mlcd-venv".toString()]).message.startsWith(
            "mlcdSetup: venv '${workspace}/.mlcd-venv' is inside the checkout")
        assert !pwned.exists()
    }

    @Test
    void aPullRequestBuildNeverReusesAVenv() {
        String version = new File(helper.libraryRoot, 'resources/mlcd/version.txt').text.trim()
        File planted = new File(workspace.path + "@tmp/mlcd-venv-${version}/bin/mlcd")
        planted.parentFile.mkdirs()
        planted.text = "#!/bin/sh\ntouch '${pwned}'\necho 'mlcd ${version}'\n"
        planted.setExecutable(true)
        env.CHANGE_ID = '7'
        assert setup() == null: helper.log.text()
        assert !pwned.exists()
        assert env.MLCD_VENV == workspace.path + "@tmp/mlcd-venv-${version}-b42"
        assert pipLog.text.contains("venv ${env.MLCD_VENV} isolated=1")
    }
}
