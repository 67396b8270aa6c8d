#!/usr/bin/env bash
# Compile gate: compiles vars/, src/ and the Jenkinsfiles with groovyc 2.4.21 (the Groovy Jenkins runs),
# so Groovy-3/4-only syntax fails here instead of on the Jenkins controller.
#   scripts/groovy-compile.sh              compile the library (output in .groovy-build/, gitignored)
#   scripts/groovy-compile.sh --self-test  prove the gate rejects Groovy-3/4-only syntax and accepts valid 2.4 code
# Exit: 0 compiled, 1 compilation failed (or self-test failed), 2 tool missing / bad usage.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ -z "${JAVA_HOME:-}" ] && [ -d /usr/lib/jvm/java-17-openjdk-amd64 ]; then
  export JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64  # Debian's default-java link is missing
fi
# groovyc and CodeNarc are short-lived JVMs: C1 only and the serial GC cut their CPU time about in half.
export JAVA_OPTS="${JAVA_OPTS:--XX:TieredStopAtLevel=1 -XX:+UseSerialGC}"
BUILD="$ROOT/.groovy-build"
STUBS="$BUILD/stubs"
CONFIG="$ROOT/tools/nonCPS-stub/compiler-config.groovy"
FIXTURES="$ROOT/tests/groovy-lint/fixtures"

die() { echo "groovy-compile: $*" >&2; exit 2; }

command -v groovyc >/dev/null 2>&1 || die "groovyc not found; install Groovy 2.4.21 with 'make system-deps' (Debian package groovy)"
version="$(groovyc --version 2>&1 | head -n 1)"
case "$version" in
  *" 2.4."*) ;;
  *) die "groovyc must be 2.4.x (what Jenkins runs), found: $version" ;;
esac

# The Jenkins annotations (and FlowInterruptedException, which the library tests with instanceof) as stubs, compiled once per run, then on the classpath with default imports.
build_stubs() {
  rm -rf "$STUBS"
  mkdir -p "$STUBS"
  groovyc -d "$STUBS" \
    "$ROOT/tools/nonCPS-stub/com/cloudbees/groovy/cps/NonCPS.groovy" \
    "$ROOT/tools/nonCPS-stub/org/jenkinsci/plugins/workflow/libs/Library.groovy" \
    "$ROOT/tools/nonCPS-stub/org/jenkinsci/plugins/workflow/steps/FlowInterruptedException.groovy" >/dev/null \
    || die "could not compile the Jenkins annotation stubs in tools/nonCPS-stub/"
}

# jenkins_compile OUT_DIR FILE...: groovyc as Jenkins would see the code; returns groovyc's status.
jenkins_compile() {
  local out="$1"; shift
  rm -rf "$out"
  mkdir -p "$out"
  groovyc -cp "$STUBS" --configscript "$CONFIG" -d "$out" "$@"
}

self_test() {
  local failed=0 f log
  log="$BUILD/self-test.log"
  : >"$log"
  for f in "$FIXTURES"/groovy3-only/*.groovy; do
    if jenkins_compile "$BUILD/self-test/out" "$f" >>"$log" 2>&1; then
      echo "FAIL: the gate accepted Groovy-3/4-only syntax in ${f#"$ROOT"/}"
      failed=1
    else
      echo "ok: rejected ${f#"$ROOT"/}"
    fi
  done
  for f in "$FIXTURES"/groovy24-ok/*.groovy; do
    if jenkins_compile "$BUILD/self-test/out" "$f" >>"$log" 2>&1; then
      echo "ok: accepted ${f#"$ROOT"/} (uses @NonCPS without an import)"
    else
      echo "FAIL: the gate rejected valid Groovy 2.4 code in ${f#"$ROOT"/} (see $log)"
      failed=1
    fi
  done
  # The rejected fixtures must be valid Groovy 4 (what npm-groovy-lint parses), so they fail for the right reason.
  local g4="$ROOT/node_modules/npm-groovy-lint/lib/java/groovy/lib"
  if [ -d "$g4" ]; then
    if java $JAVA_OPTS -cp "$g4/*" org.codehaus.groovy.tools.FileSystemCompiler -d "$BUILD/self-test/g4" \
        "$FIXTURES"/groovy3-only/*.groovy >>"$log" 2>&1; then
      echo "ok: Groovy 4 accepts every file in tests/groovy-lint/fixtures/groovy3-only/"
    else
      echo "FAIL: some of tests/groovy-lint/fixtures/groovy3-only/ is not valid Groovy 4 either; it proves nothing (see $log)"
      failed=1
    fi
  else
    echo "note: node_modules absent; skipped checking the fixtures against Groovy 4 (run npm ci)"
  fi
  if [ "$failed" -ne 0 ]; then
    echo "groovy-compile self-test: FAILED"
    return 1
  fi
  echo "groovy-compile self-test: passed"
}

build_stubs
if [ "${1:-}" = "--self-test" ]; then
  self_test
  exit $?
elif [ $# -gt 0 ]; then
  die "unknown argument '$1'; usage: scripts/groovy-compile.sh [--self-test]"
fi

status=0
mapfile -t lib_files < <(find vars src -name '*.groovy' -type f 2>/dev/null | sort)
if [ ${#lib_files[@]} -eq 0 ]; then
  echo "groovy-compile: no .groovy files under vars/ or src/; nothing to compile"
else
  # One compilation unit, as Jenkins loads the library: vars/ scripts may use src/ classes.
  if jenkins_compile "$BUILD/classes" "${lib_files[@]}"; then
    echo "groovy-compile: ${#lib_files[@]} library file(s) compile under $version"
  else
    echo "groovy-compile: the library (vars/, src/) does not compile under Groovy 2.4.21; fix the errors above" >&2
    status=1
  fi
fi

# Jenkinsfiles have no .groovy extension and share a class name: copy each under a unique name.
mapfile -t jenkinsfiles < <(ls Jenkinsfile examples/Jenkinsfile* 2>/dev/null || true)
if [ ${#jenkinsfiles[@]} -gt 0 ]; then
  rm -rf "$BUILD/jenkinsfiles-src"
  mkdir -p "$BUILD/jenkinsfiles-src"
  copies=()
  for jf in "${jenkinsfiles[@]}"; do
    name="$(echo "$jf" | tr -c 'A-Za-z0-9\n' '_')"
    cp "$jf" "$BUILD/jenkinsfiles-src/${name}.groovy"
    copies+=("$BUILD/jenkinsfiles-src/${name}.groovy")
  done
  if jenkins_compile "$BUILD/jenkinsfiles" "${copies[@]}" 2>&1 | sed "s#$BUILD/jenkinsfiles-src/##"; [ "${PIPESTATUS[0]}" -eq 0 ]; then
    echo "groovy-compile: ${#jenkinsfiles[@]} Jenkinsfile(s) compile under $version: ${jenkinsfiles[*]}"
  else
    echo "groovy-compile: a Jenkinsfile does not compile under Groovy 2.4.21 (names above: Jenkinsfile -> Jenkinsfile.groovy, examples/Jenkinsfile.team -> examples_Jenkinsfile_team.groovy)" >&2
    status=1
  fi
fi
exit "$status"
