#!/usr/bin/env bash
# Lints mlcd's pipeline code with npm-groovy-lint 16.2.0 (CodeNarc 3.7.0), preset recommended-jenkinsfile
# (.groovylintrc.json), and fails on any error-level finding.
#   scripts/groovy-lint.sh [PATH...]     default: vars src Jenkinsfile examples/Jenkinsfile* (those that exist)
#   scripts/groovy-lint.sh --self-test   prove it fails on a known lint error and passes known-good code
# Offline once node_modules is installed (npm ci from package-lock.json runs here if it is missing).
# GROOVY_LINT_LOGLEVEL=info also shows info-level findings (default: warning, i.e. warnings and errors).
# Exit: 0 no error, 1 error-level findings, 2 tool missing or unusable.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LINT_VERSION="16.2.0"
die() { echo "groovy-lint: $*" >&2; exit 2; }

# Java 17 first on PATH: npm-groovy-lint otherwise tries to download a JDK, which fails offline.
if [ -z "${JAVA_HOME:-}" ] && [ -d /usr/lib/jvm/java-17-openjdk-amd64 ]; then
  export JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64  # Debian's default-java link is missing
fi
if [ -n "${JAVA_HOME:-}" ]; then export PATH="$JAVA_HOME/bin:$PATH"; fi
command -v java >/dev/null 2>&1 || die "java not found; install Java 17 ('make system-deps') or set JAVA_HOME"
java_major="$(java -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -n 1)"
[ "${java_major:-0}" -ge 17 ] || die "Java >= 17 is needed (found '${java_major:-none}'); set JAVA_HOME to a JDK 17"

installed_version() { sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' node_modules/npm-groovy-lint/package.json 2>/dev/null | head -n 1; }
if [ "$(installed_version)" != "$LINT_VERSION" ]; then
  command -v npm >/dev/null 2>&1 || die "npm not found; run 'make system-deps'"
  echo "groovy-lint: installing npm-groovy-lint $LINT_VERSION from package-lock.json (npm ci)" >&2
  npm ci --no-audit --no-fund >&2 || die "npm ci failed; check that the npm registry is reachable"
fi
[ "$(installed_version)" = "$LINT_VERSION" ] || die "node_modules/npm-groovy-lint is not $LINT_VERSION after npm ci; check package-lock.json"

# A short-lived JVM: C1 only and the serial GC halve CodeNarc's CPU time on 2 cores.
LINT_JAVA_OPTIONS="-Xms256m,-Xmx2048m,-XX:TieredStopAtLevel=1,-XX:+UseSerialGC"

# run_lint FAILON ARG...: npm-groovy-lint with mlcd's config; returns its status.
# --noserver: CodeNarc runs in a process that ends with the lint, instead of leaving a CodeNarcServer behind.
run_lint() {
  local failon="$1"; shift
  npx --no -- npm-groovy-lint --noserver --failon "$failon" \
    --config "$ROOT" --javaexecutable "$(command -v java)" --javaoptions="$LINT_JAVA_OPTIONS" \
    --loglevel "${GROOVY_LINT_LOGLEVEL:-warning}" "$@"
}

# Self-test in one lint run (JSON report): the known lint error must be reported as an error, known-good code
# must have none. The files in one run share exactly the configuration a normal run uses.
if [ "${1:-}" = "--self-test" ]; then
  fixtures="tests/groovy-lint/fixtures"
  report="$(mktemp)"
  trap 'rm -f "$report"' EXIT
  run_lint none --output json \
    "$fixtures/lint-error" "$fixtures/good" "$fixtures/groovy24-ok" >"$report" \
    || die "npm-groovy-lint could not run over $fixtures"
  node -e '
    const fs = require("fs");
    let report;
    try { report = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); }
    catch (e) { console.log("FAIL: npm-groovy-lint wrote no JSON report"); process.exit(1); }
    let failed = false, sawDeadCode = false;
    for (const [file, result] of Object.entries(report.files || {})) {
      const errors = (result.errors || []).filter((e) => e.severity === "error");
      if (file.includes("/lint-error/")) {
        sawDeadCode = sawDeadCode || errors.some((e) => e.rule === "DeadCode");
      } else if (errors.length > 0) {
        failed = true;
        for (const e of errors) console.log(`FAIL: known-good ${file}:${e.line} reported as error ${e.rule}: ${e.msg}`);
      }
    }
    if (sawDeadCode) console.log("ok: groovy-lint reports the DeadCode error in fixtures/lint-error");
    else { failed = true; console.log("FAIL: groovy-lint did not report the DeadCode error in fixtures/lint-error"); }
    if (!failed) console.log("ok: no error in fixtures/good and fixtures/groovy24-ok");
    process.exit(failed ? 1 : 0);
  ' "$report" || { echo "groovy-lint self-test: FAILED"; exit 1; }
  echo "groovy-lint self-test: passed"
  exit 0
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for p in vars src Jenkinsfile examples/Jenkinsfile*; do
    [ -e "$p" ] && targets+=("$p")
  done
fi
for p in "${targets[@]}"; do
  [ -e "$p" ] || die "no such file or directory: $p"
done
if [ ${#targets[@]} -eq 0 ]; then
  echo "groovy-lint: no pipeline code to lint"
  exit 0
fi

status=0
run_lint error "${targets[@]}" || status=$?
if [ "$status" -eq 0 ]; then
  echo "groovy-lint: no error-level finding in ${targets[*]}"
else
  echo "groovy-lint: npm-groovy-lint failed (exit $status): fix the errors listed above" >&2
  exit 1
fi
