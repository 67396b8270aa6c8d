import groovy.transform.Field
import org.mlcd.MlcdStep
import org.mlcd.StepArgs

@Field static final String STEP = 'mlcdSetup'
@Field static final List<String> KEYS = ['source', 'indexUrl', 'indexCredentialsId', 'path', 'python', 'venv']
@Field static final List<String> SOURCES = ['pypi', 'path']
// PIP_INDEX_URL from indexUrl, with the index login (bound by withCredentials) put into the URL
// here, from the environment: the login never appears in Groovy, argv or the log
@Field static final String USE_INDEX = '''set -eu
if [ -n "${MLCD_INDEX_URL:-}" ]; then
  if [ -n "${MLCD_INDEX_USER:-}" ]; then
    PIP_INDEX_URL="$("$MLCD_PYTHON" -c 'import os, urllib.parse as p
u = p.urlsplit(os.environ["MLCD_INDEX_URL"])
q = lambda s: p.quote(s, safe="")
auth = q(os.environ["MLCD_INDEX_USER"]) + ":" + q(os.environ["MLCD_INDEX_PASSWORD"]) + "@"
print(p.urlunsplit((u.scheme, auth + u.netloc, u.path, u.query, u.fragment)))')"
  else
    PIP_INDEX_URL="$MLCD_INDEX_URL"
  fi
  export PIP_INDEX_URL
fi
'''
@Field static final String INSTALL_PYPI = '''if [ "$("$MLCD_VENV_DIR/bin/mlcd" --version 2>/dev/null || true)" = "mlcd $MLCD_VERSION" ]; then
  echo "mlcd $MLCD_VERSION is already installed in $MLCD_VENV_DIR"
else
  "$MLCD_PYTHON" -m venv "$MLCD_VENV_DIR"
  "$MLCD_VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check "mlcd==$MLCD_VERSION"
fi'''
@Field static final String INSTALL_PATH = '''[ -x "$MLCD_VENV_DIR/bin/python" ] || "$MLCD_PYTHON" -m venv "$MLCD_VENV_DIR"
"$MLCD_VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check "$MLCD_SOURCE_PATH"'''
@Field static final String VERSION = '"$MLCD_VENV_DIR/bin/mlcd" --version 2>/dev/null || true'

/**
 * Install the mlcd CLI at exactly this library's version into a virtual environment in the
 * workspace, check `mlcd --version`, and remember the venv in env.MLCD_VENV.
 * From `indexUrl` (logged in with the Username-with-password `indexCredentialsId`, bound to shell
 * variables; the URL with the login is built inside the shell script, never in Groovy), else from
 * whatever index the agent's pip configuration names (pip.conf, PIP_INDEX_URL).
 * env.MLCD_VENV is build-wide (set through `env`, not `withEnv`, so it outlives this step); every
 * other mlcd step prepends its bin directory to PATH with withEnv(['PATH+MLCD=...']) around its
 * `sh`, so no step changes PATH for the team's own shell steps.
 */
void call(Map args = [:]) {
    MlcdStep.checkArgs(this, STEP, args, KEYS, null)
    String source = args.source ?: 'pypi'
    if (!SOURCES.contains(source)) {
        error("${STEP}: source '${source}' is not supported (did you mean '${StepArgs.closest(source, SOURCES)}'?); " +
            "valid sources: ${SOURCES.join(', ')}")
    }
    if (source == 'path' && !args.path) {
        error("${STEP}: source 'path' needs path: a local checkout of mlcd or a wheel file")
    }
    if (args.indexCredentialsId && !args.indexUrl) {
        error("${STEP}: indexCredentialsId needs indexUrl: the package index those credentials log in to")
    }
    String version = libraryResource('mlcd/version.txt').trim()
    String venv = args.venv ?: '.mlcd-venv'
    String venvDir = venv.startsWith('/') ? venv : "${pwd()}/${venv}"
    List<String> vars = ["MLCD_VENV_DIR=${venvDir}".toString(), "MLCD_VERSION=${version}".toString(),
                         "MLCD_PYTHON=${args.python ?: 'python3'}".toString()]
    if (args.indexUrl) {
        vars << "MLCD_INDEX_URL=${args.indexUrl}".toString()
    }
    if (source == 'path') {
        vars << "MLCD_SOURCE_PATH=${args.path}".toString()
    }
    String reported = ''
    List bindings = []
    if (args.indexCredentialsId) {
        bindings << usernamePassword(credentialsId: args.indexCredentialsId as String,
                                     usernameVariable: 'MLCD_INDEX_USER', passwordVariable: 'MLCD_INDEX_PASSWORD')
    }
    String install = USE_INDEX + (source == 'path' ? INSTALL_PATH : INSTALL_PYPI)
    withEnv(vars) {
        int status = 0
        if (bindings) {
            withCredentials(bindings) {
                status = sh(script: install, returnStatus: true)
            }
        } else {
            status = sh(script: install, returnStatus: true)
        }
        if (status != 0) {
            String from = source == 'path' ? "from ${args.path}" :
                (args.indexUrl ? 'from the given indexUrl' : "from the agent's pip configuration (pip.conf, PIP_INDEX_URL)")
            error("${STEP}: installing mlcd ${version} ${from} into ${venvDir} failed (exit code ${status}) " +
                '(fix: check that this mlcd version is published on the index, or pass indexUrl ' +
                '(and indexCredentialsId) or source/path)')
        }
        reported = sh(script: VERSION, returnStdout: true).trim()
    }
    if (reported != "mlcd ${version}") {
        String cli = reported - 'mlcd '
        String found = reported ? "is ${cli}" : 'is missing'
        error("${STEP}: the mlcd CLI in ${venvDir} ${found} but this library is ${version} " +
            "(fix: install mlcd==${version}, or use the library that matches the CLI, e.g. @Library('mlcd@${cli}'))")
    }
    env.MLCD_VENV = venvDir
    echo "${STEP}: mlcd ${version} ready in ${venvDir}"
}
