import groovy.transform.Field
import org.mlcd.MlcdStep
import org.mlcd.StepArgs

@Field static final String STEP = 'mlcdSetup'
@Field static final List<String> KEYS = ['source', 'indexUrl', 'indexCredentialsId', 'path', 'python', 'venv']
@Field static final List<String> SOURCES = ['pypi', 'path']
// The package index: indexUrl as PIP_INDEX_URL; with a login (bound by withCredentials), a pip.conf
// holding the URL with the login, written mode 0600 into a fresh directory under the agent's temporary
// directory and removed when the script ends. The login never reaches Groovy, argv or the log: the
// script starts with `set +x` (Jenkins runs sh with -x, and its masking misses the URL-encoded form).
@Field static final String USE_INDEX = '''set +x
set -eu
mkdir -p "$MLCD_TMP"
if [ -n "${MLCD_INDEX_URL:-}" ]; then
  if [ -n "${MLCD_INDEX_USER:-}" ]; then
    MLCD_PIP_DIR="$(mktemp -d "$MLCD_TMP/mlcd-pip.XXXXXX")"
    trap 'rm -rf "$MLCD_PIP_DIR"' EXIT
    "$MLCD_PYTHON" -I -c 'import os, sys, urllib.parse as p
u = p.urlsplit(os.environ["MLCD_INDEX_URL"])
q = lambda s: p.quote(s, safe="")
auth = q(os.environ["MLCD_INDEX_USER"]) + ":" + q(os.environ["MLCD_INDEX_PASSWORD"]) + "@"
url = p.urlunsplit((u.scheme, auth + u.netloc, u.path, u.query, u.fragment))
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, ("[global]\\nindex-url = " + url + "\\n").encode())
os.close(fd)' "$MLCD_PIP_DIR/pip.conf"
    export PIP_CONFIG_FILE="$MLCD_PIP_DIR/pip.conf"
  else
    export PIP_INDEX_URL="$MLCD_INDEX_URL"
  fi
fi
'''
// -I (isolated): neither the checkout (the working directory) nor PYTHON* variables can put modules
// first on sys.path while the index login is bound. MLCD_FRESH (pull requests): never reuse a venv.
@Field static final String INSTALL_PYPI = '''MLCD_FOUND="$("$MLCD_VENV_DIR/bin/mlcd" --version 2>/dev/null || true)"
if [ -z "${MLCD_FRESH:-}" ] && [ "$MLCD_FOUND" = "mlcd $MLCD_VERSION" ]; then
  echo "mlcd $MLCD_VERSION is already installed in $MLCD_VENV_DIR"
else
  rm -rf "$MLCD_VENV_DIR"
  "$MLCD_PYTHON" -I -m venv "$MLCD_VENV_DIR"
  "$MLCD_VENV_DIR/bin/python" -I -m pip install --quiet --disable-pip-version-check "mlcd==$MLCD_VERSION"
fi'''
@Field static final String INSTALL_PATH = '''if [ -n "${MLCD_FRESH:-}" ] || [ ! -x "$MLCD_VENV_DIR/bin/python" ]; then
  rm -rf "$MLCD_VENV_DIR"
  "$MLCD_PYTHON" -I -m venv "$MLCD_VENV_DIR"
fi
"$MLCD_VENV_DIR/bin/python" -I -m pip install --quiet --disable-pip-version-check "$MLCD_SOURCE_PATH"'''
@Field static final String VERSION = '"$MLCD_VENV_DIR/bin/mlcd" --version 2>/dev/null || true'

/**
 * Install the mlcd CLI at exactly this library's version into a virtual environment under the agent's
 * temporary directory (`pwd(tmp: true)`, outside the checkout; a fresh one per pull-request build),
 * check `mlcd --version`, and remember the venv in env.MLCD_VENV.
 * From `indexUrl` (logged in with the Username-with-password `indexCredentialsId`, bound to shell
 * variables; the URL with the login goes into a 0600 pip.conf in a temporary directory, never into
 * Groovy, a command line or the log), else from
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
    String workspace = pwd()
    String tmp = pwd(tmp: true)
    if (args.venv && (!(args.venv as String).startsWith('/') || "${args.venv}/".startsWith("${workspace}/"))) {
        error("${STEP}: venv '${args.venv}' is inside the checkout, where a commit could plant its own mlcd " +
            '(fix: an absolute path outside the workspace, or leave venv out: the default is under the ' +
            "agent's temporary directory)")
    }
    // a pull request gets a venv of its own, made afresh: nothing a pull request's build left behind is reused
    boolean fresh = env.CHANGE_ID && !args.venv
    String venvDir = args.venv ?: "${tmp}/mlcd-venv-${version}${fresh ? "-b${env.BUILD_NUMBER}" : ''}"
    List<String> vars = ["MLCD_VENV_DIR=${venvDir}".toString(), "MLCD_VERSION=${version}".toString(),
                         "MLCD_PYTHON=${args.python ?: 'python3'}".toString(), "MLCD_TMP=${tmp}".toString()]
    if (fresh) {
        vars << 'MLCD_FRESH=1'
    }
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
                (args.indexUrl ? 'from the given indexUrl' :
                    "from the agent's pip configuration (pip.conf, PIP_INDEX_URL)")
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
