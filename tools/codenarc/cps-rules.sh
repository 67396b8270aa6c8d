#!/usr/bin/env bash
# Runs CodeNarc's Jenkins (CPS) rules (plus mlcd's StepCallFromNonCpsMethod) for real over pipeline code: a semantic-analysis compile with a classpath,
# Jenkins' default imports (@NonCPS, @Library) and the library's own classes, so the rules can fire.
#   tools/codenarc/cps-rules.sh [--no-default-imports] [PATH...]
# PATH: a directory (every *.groovy under it) or a file (e.g. Jenkinsfile), inside the repository.
# Default PATHs: vars src Jenkinsfile examples/Jenkinsfile* (those that exist).
# Prints one line per violation: "VIOLATION <path>:<line> <Rule>: <message>".
# Exit: 0 no violation, 1 violations, 2 could not analyse (tool missing, code does not compile, CodeNarc failed).
# --no-default-imports leaves out the Jenkins default imports (used by the test to show they are needed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ -z "${JAVA_HOME:-}" ] && [ -d /usr/lib/jvm/java-17-openjdk-amd64 ]; then
  export JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64  # Debian's default-java link is missing
fi
# groovyc and CodeNarc are short-lived JVMs: C1 only and the serial GC cut their CPU time about in half.
export JAVA_OPTS="${JAVA_OPTS:--XX:TieredStopAtLevel=1 -XX:+UseSerialGC}"
if [ -n "${JAVA_HOME:-}" ]; then export PATH="$JAVA_HOME/bin:$PATH"; fi
TOOLS="$ROOT/tools"
BUILD="$ROOT/.groovy-build/codenarc"
LINT_VERSION="16.2.0"

die() { echo "cps-rules: $*" >&2; exit 2; }

default_imports=1
paths=()
for arg in "$@"; do
  case "$arg" in
    --no-default-imports) default_imports=0 ;;
    -*) die "unknown option '$arg'; usage: tools/codenarc/cps-rules.sh [--no-default-imports] [PATH...]" ;;
    *) paths+=("$arg") ;;
  esac
done

for tool in java javac groovyc; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found; run 'make system-deps' (Java 17 JDK, Groovy 2.4.21)"
done

# CodeNarc 3.7.0 and Groovy 4 come from npm-groovy-lint's bundle; install it from the lock file if absent.
installed_version() { sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$ROOT/node_modules/npm-groovy-lint/package.json" 2>/dev/null | head -n 1; }
if [ "$(installed_version)" != "$LINT_VERSION" ]; then
  command -v npm >/dev/null 2>&1 || die "npm not found; run 'make system-deps'"
  echo "cps-rules: installing npm-groovy-lint $LINT_VERSION (npm ci)" >&2
  (cd "$ROOT" && npm ci --no-audit --no-fund >&2) || die "npm ci failed; check that the npm registry is reachable"
fi
LIB="$ROOT/node_modules/npm-groovy-lint/lib/java"
codenarc_jar="$(ls "$LIB"/CodeNarc-*.jar 2>/dev/null | head -n 1)"
[ -n "$codenarc_jar" ] || die "no CodeNarc jar in $LIB; run 'npm ci'"

# Files to analyse, relative to ROOT (CodeNarc's -sourcefiles are relative to its -basedir).
if [ ${#paths[@]} -eq 0 ]; then
  for p in vars src Jenkinsfile "$ROOT"/examples/Jenkinsfile*; do
    [ -e "$ROOT/${p#"$ROOT"/}" ] && paths+=("$ROOT/${p#"$ROOT"/}")
  done
fi
files=()
for p in "${paths[@]}"; do
  [ -e "$p" ] || die "no such file or directory: $p"
  while IFS= read -r f; do
    rel="$(realpath --relative-to="$ROOT" "$f")"
    case "$rel" in ../*) die "$p is outside the repository $ROOT" ;; esac
    files+=("$rel")
  done < <(if [ -d "$p" ]; then find "$p" -type f -name '*.groovy' | sort; else echo "$p"; fi)
done
if [ ${#files[@]} -eq 0 ]; then
  echo "cps-rules: no pipeline code to analyse (${paths[*]:-nothing given})"
  exit 0
fi

# 1-2. Tooling, rebuilt only when its sources change (.groovy-build/codenarc-tooling/):
#  stubs/   the Jenkins annotation stubs (the same ones the compile gate uses);
#  rules/   mlcd's own rule, StepCallFromNonCpsMethod;
#  imports/ the global AST transformation that adds Jenkins' default imports inside CodeNarc's compiler.
TOOLING="$ROOT/.groovy-build/codenarc-tooling"
stamp="$TOOLING/.built"
if [ ! -f "$stamp" ] || [ -n "$(find "$TOOLS/nonCPS-stub" "$TOOLS/codenarc/src" "$TOOLS/codenarc/cps-rules.sh" -newer "$stamp" -type f | head -n 1)" ]; then
  rm -rf "$TOOLING"
  mkdir -p "$TOOLING/stubs" "$TOOLING/rules" "$TOOLING/imports/META-INF/services"
  groovyc -d "$TOOLING/stubs" \
    "$TOOLS/nonCPS-stub/com/cloudbees/groovy/cps/NonCPS.groovy" \
    "$TOOLS/nonCPS-stub/org/jenkinsci/plugins/workflow/libs/Library.groovy" \
    "$TOOLS/nonCPS-stub/org/jenkinsci/plugins/workflow/steps/FlowInterruptedException.groovy" >/dev/null \
    || die "could not compile the annotation stubs in tools/nonCPS-stub/"
  javac -nowarn --release 17 -cp "$LIB/groovy/lib/*:$codenarc_jar" -d "$TOOLING/rules" \
    "$TOOLS"/codenarc/src/org/mlcd/tooling/StepCallFromNonCpsMethod*.java \
    || die "could not compile mlcd's CodeNarc rule in tools/codenarc/src/org/mlcd/tooling/"
  javac -nowarn --release 17 -cp "$LIB/groovy/lib/*" -d "$TOOLING/imports" \
    "$TOOLS/codenarc/src/org/mlcd/tooling/JenkinsDefaultImports.java" \
    || die "could not compile tools/codenarc/src/org/mlcd/tooling/JenkinsDefaultImports.java"
  cp "$TOOLS/codenarc/src/META-INF/services/org.codehaus.groovy.transform.ASTTransformation" \
    "$TOOLING/imports/META-INF/services/"
  touch "$stamp"
fi
analysis_cp="$TOOLING/stubs:$TOOLING/rules:$BUILD/classes"
if [ "$default_imports" -eq 1 ]; then
  analysis_cp="$analysis_cp:$TOOLING/imports"
fi

rm -rf "$BUILD"
mkdir -p "$BUILD/classes"

# 3. The analysed Groovy classes themselves, compiled by Groovy 2.4.21, so that a vars/ script using a src/
#    class (or a class using another) resolves during CodeNarc's semantic analysis.
groovy_sources=()
for f in "${files[@]}"; do
  case "$f" in *.groovy) groovy_sources+=("$ROOT/$f") ;; esac
done
if [ ${#groovy_sources[@]} -gt 0 ]; then
  if ! groovyc -cp "$TOOLING/stubs" --configscript "$TOOLS/nonCPS-stub/compiler-config.groovy" \
      -d "$BUILD/classes" "${groovy_sources[@]}" >"$BUILD/groovyc.log" 2>&1; then
    grep -v '^\s*at ' "$BUILD/groovyc.log" | head -n 20 >&2
    die "the code does not compile under Groovy 2.4.21, so it cannot be analysed; fix it first (scripts/groovy-compile.sh)"
  fi
fi

# 4. CodeNarc with the Jenkins rules; its compile problems would silently disable the rules, so they are fatal.
sourcefiles="$(IFS=,; echo "${files[*]}")"
status=0
java $JAVA_OPTS -cp "$codenarc_jar:$LIB/GMetrics-Groovy4-2.1.0.jar:$LIB/groovy/lib/*:$LIB/slf4j-api-2.0.17.jar:$LIB/logback-classic-1.5.18.jar:$LIB/logback-core-1.5.18.jar:$analysis_cp" \
  -Dlogback.configurationFile="$TOOLS/codenarc/logback-warn.xml" \
  org.codenarc.CodeNarc -basedir="$ROOT" -sourcefiles="$sourcefiles" \
  -rulesetfiles="file:$TOOLS/codenarc/jenkins-cps-ruleset.groovy" \
  -report="text:$BUILD/report.txt" >"$BUILD/codenarc.log" 2>&1 || status=$?
if [ "$status" -ne 0 ] || [ ! -f "$BUILD/report.txt" ]; then
  tail -n 20 "$BUILD/codenarc.log" >&2
  die "CodeNarc failed (exit $status); full log in ${BUILD#"$ROOT"/}/codenarc.log"
fi
if grep -q -E 'Compilation (failed|error)' "$BUILD/codenarc.log"; then
  grep -E 'Compilation failed for|unable to resolve|@ line' "$BUILD/codenarc.log" | sed 's/^[0-9:. ]*\[main\] //' >&2
  die "CodeNarc could not compile some files for semantic analysis, so its Jenkins rules would report nothing for them; log in ${BUILD#"$ROOT"/}/codenarc.log"
fi

# Report: "File: <path>" then "    Violation: Rule=<R> P=<n> Line=<l> Msg=[<m>] Src=[...]".
violations="$(awk '
  /^File: / { file = substr($0, 7); next }
  /^ *Violation: Rule=/ {
    rule = $0; sub(/.*Rule=/, "", rule); sub(/ .*/, "", rule)
    line = $0; sub(/.* Line=/, "", line); sub(/ .*/, "", line)
    msg = $0; sub(/.* Msg=\[/, "", msg); sub(/\] Src=\[.*$/, "", msg); sub(/\]$/, "", msg)
    printf "VIOLATION %s:%s %s: %s\n", file, line, rule, msg
  }' "$BUILD/report.txt")"
count=0
if [ -n "$violations" ]; then
  echo "$violations"
  count="$(printf '%s\n' "$violations" | wc -l)"
fi
echo "cps-rules: ${#files[@]} file(s) analysed, $count Jenkins (CPS) rule violation(s)"
[ "$count" -eq 0 ] || exit 1
