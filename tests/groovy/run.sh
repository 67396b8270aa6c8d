#!/usr/bin/env bash
# Groovy tests of the Jenkins shared library (own JenkinsPipelineUnit-like harness), with
# Debian's Groovy 2.4.21 (what Jenkins runs) and JUnit 4. Run from anywhere:
#   tests/groovy/run.sh            unit + step tests (+ e2e when the Python CLI is available)
#   tests/groovy/run.sh steps      one directory under tests/groovy
set -euo pipefail
cd "$(dirname "$0")/../.."
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}"
JARS=/usr/share/java
command -v groovy >/dev/null 2>&1 || { echo "tests/groovy/run.sh: groovy not found; run 'make system-deps' (Debian package groovy, 2.4.21)" >&2; exit 2; }
[ -f "$JARS/junit4.jar" ] || { echo "tests/groovy/run.sh: $JARS/junit4.jar not found; run 'make system-deps' (Debian package junit4)" >&2; exit 2; }
# readJSON in the harness is Jenkins' own json-lib (what pipeline-utility-steps returns): JSONNull is real
[ -f "$JARS/jenkins-json-lib.jar" ] || { echo "tests/groovy/run.sh: $JARS/jenkins-json-lib.jar not found; run 'make system-deps' (Debian package libjenkins-json-java)" >&2; exit 2; }
JSON_LIB="$JARS/jenkins-json-lib.jar:$JARS/ezmorph.jar:$JARS/commons-lang.jar:$JARS/commons-beanutils.jar:$JARS/commons-collections3.jar:$JARS/commons-logging.jar"
CP="tests/groovy:src:$JARS/junit4.jar:$JARS/hamcrest-core.jar:$JSON_LIB"
if [ "$#" -eq 0 ]; then
  set -- unit steps
  if [ -x .venv/bin/python ] && .venv/bin/python -c 'import mlcd.sim.launcher, mlcd.stages.run' 2>/dev/null; then
    set -- "$@" e2e
  else
    echo "tests/groovy/run.sh: skipping e2e (needs .venv with mlcd's CLI and stand-in)"
  fi
fi
exec groovy -cp "$CP" -Dmlcd.libraryRoot="$PWD" tests/groovy/RunTests.groovy "$@"
