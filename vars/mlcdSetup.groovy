import groovy.transform.Field
import org.mlcd.StepArgs

@Field static final String STEP = 'mlcdSetup'
@Field static final List<String> KEYS = ['source', 'indexUrl', 'path', 'python', 'venv']
@Field static final List<String> SOURCES = ['pypi', 'path']
@Field static final String INSTALL_PYPI = '''set -eu
if [ "$("$MLCD_VENV_DIR/bin/mlcd" --version 2>/dev/null || true)" = "mlcd $MLCD_VERSION" ]; then
  echo "mlcd $MLCD_VERSION is already installed in $MLCD_VENV_DIR"
else
  "$MLCD_PYTHON" -m venv "$MLCD_VENV_DIR"
  "$MLCD_VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check "mlcd==$MLCD_VERSION"
fi'''
@Field static final String INSTALL_PATH = '''set -eu
[ -x "$MLCD_VENV_DIR/bin/python" ] || "$MLCD_PYTHON" -m venv "$MLCD_VENV_DIR"
"$MLCD_VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check "$MLCD_SOURCE_PATH"'''
@Field static final String VERSION = '"$MLCD_VENV_DIR/bin/mlcd" --version 2>/dev/null || true'

/**
 * Install the mlcd CLI at exactly this library's version into a virtual environment in the
 * workspace, check `mlcd --version`, and remember the venv in env.MLCD_VENV.
 * env.MLCD_VENV is build-wide (set through `env`, not `withEnv`, so it outlives this step); every
 * other mlcd step prepends its bin directory to PATH with withEnv(['PATH+MLCD=...']) around its
 * `sh`, so no step changes PATH for the team's own shell steps.
 */
void call(Map args = [:]) {
    String problem = StepArgs.unknownKey(STEP, args, KEYS)
    if (problem) {
        error(problem)
    }
    String source = args.source ?: 'pypi'
    if (!SOURCES.contains(source)) {
        error("${STEP}: source '${source}' is not supported (did you mean '${StepArgs.closest(source, SOURCES)}'?); " +
            "valid sources: ${SOURCES.join(', ')}")
    }
    if (source == 'path' && !args.path) {
        error("${STEP}: source 'path' needs path: a local checkout of mlcd or a wheel file")
    }
    String version = libraryResource('mlcd/version.txt').trim()
    String venv = args.venv ?: '.mlcd-venv'
    String venvDir = venv.startsWith('/') ? venv : "${pwd()}/${venv}"
    List<String> vars = ["MLCD_VENV_DIR=${venvDir}".toString(), "MLCD_VERSION=${version}".toString(),
                         "MLCD_PYTHON=${args.python ?: 'python3'}".toString()]
    if (args.indexUrl) {
        vars << "PIP_INDEX_URL=${args.indexUrl}".toString()
    }
    if (source == 'path') {
        vars << "MLCD_SOURCE_PATH=${args.path}".toString()
    }
    String reported = ''
    withEnv(vars) {
        int status = sh(script: source == 'path' ? INSTALL_PATH : INSTALL_PYPI, returnStatus: true)
        if (status != 0) {
            String from = source == 'path' ? "from ${args.path}" :
                (args.indexUrl ? 'from the given indexUrl' : 'from PyPI')
            error("${STEP}: installing mlcd ${version} ${from} into ${venvDir} failed (exit code ${status}) " +
                '(fix: check that this mlcd version is published on the index, or pass indexUrl or source/path)')
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
