#!/usr/bin/env bash
# Installs the Debian packages the tests need (Groovy 2.4.21 + JUnit 4 for the Jenkins steps,
# nginx as a PUT-capable artifact repository, Java 17, Node/npm for npm-groovy-lint, headless
# Chromium for the report tests in a real browser).
# Does nothing when they are already there; needs root (as on the project's machines).
set -euo pipefail
need=()
command -v groovy >/dev/null 2>&1 || need+=(groovy)
[ -f /usr/share/java/junit4.jar ] || need+=(junit4)
# Jenkins' own json-lib (what readJSON returns) for the Groovy harness
[ -f /usr/share/java/jenkins-json-lib.jar ] || need+=(libjenkins-json-java)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v javac >/dev/null 2>&1 || [ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/javac ] || need+=(openjdk-17-jdk-headless)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v git >/dev/null 2>&1 || need+=(git)
command -v curl >/dev/null 2>&1 || need+=(curl)
[ -x /usr/bin/chromium ] || need+=(chromium)
# wrk: make bench compares the API load gate with it (bench/apiload.py)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  echo "system-deps: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
