#!/usr/bin/env bash
# Proves CodeNarc's Jenkins (CPS) rules (and mlcd's StepCallFromNonCpsMethod) fire, then holds mlcd's pipeline code to them.
#  1. Over fixtures/bad: every rule of the Jenkins ruleset is reported, each exactly on the lines the fixture
#     marks (a comment "// <Rule>: ..." marks the next code line), and nothing else.
#  2. Over fixtures/good: zero violations.
#  3. Without Jenkins' default imports, the good fixture cannot be analysed and the runner says so (exit 2)
#     instead of passing silently: the import of @NonCPS is what lets the rules tell CPS from non-CPS code.
#  4. Over vars/, src/ and the Jenkinsfiles: zero violations (each one is listed otherwise).
# Exit 0 when all hold, 1 otherwise.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUNNER="$ROOT/tools/codenarc/cps-rules.sh"
FIX="$ROOT/tests/groovy-lint/fixtures"
RULES=(CpsCallFromNonCpsMethod ForbiddenCallInCpsMethod ClosureInGString ClassNotSerializable
       ExpressionInCpsMethodNotSerializable ParameterOrReturnTypeNotSerializable ObjectOverrideOnlyNonCpsMethods
       StepCallFromNonCpsMethod)  # the last one is mlcd's own rule (tools/codenarc/src/)
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# 1. The known-bad fixture.
"$RUNNER" "$FIX/bad" >"$TMP/bad.out" 2>"$TMP/bad.err"
rc=$?
if [ "$rc" -ne 1 ]; then
  cat "$TMP/bad.out" "$TMP/bad.err"
  fail "expected violations (exit 1) over fixtures/bad, got exit $rc"
fi
sed -n 's/^VIOLATION \([^ ]*\) \([A-Za-z]*\):.*/\1 \2/p' "$TMP/bad.out" | sort -u >"$TMP/actual"
for f in "$FIX"/bad/*.groovy; do
  rel="$(realpath --relative-to="$ROOT" "$f")"
  awk -v file="$rel" '
    pending != "" && $0 !~ /^[ \t]*($|\/\/|@)/ { print file ":" NR " " pending; pending = "" }
    match($0, /^[ \t]*\/\/ [A-Za-z]+:/) { pending = substr($0, RSTART, RLENGTH); sub(/^[ \t]*\/\/ /, "", pending); sub(/:$/, "", pending) }
  ' "$f"
done | sort -u >"$TMP/expected"
for rule in "${RULES[@]}"; do
  if grep -q " $rule\$" "$TMP/actual"; then
    echo "ok: $rule fires"
  else
    fail "$rule reported nothing over fixtures/bad"
  fi
  grep -q " $rule\$" "$TMP/expected" || fail "fixtures/bad marks no line for $rule"
done
while read -r missing; do
  [ -n "$missing" ] && fail "expected and not reported: $missing"
done < <(comm -23 "$TMP/expected" "$TMP/actual")
while read -r extra; do
  [ -n "$extra" ] && fail "reported but not marked in the fixture: $extra"
done < <(comm -13 "$TMP/expected" "$TMP/actual")
echo "ok: fixtures/bad: $(wc -l <"$TMP/actual") marked violation(s) compared with the report"

# 2. The known-good fixture.
"$RUNNER" "$FIX/good" >"$TMP/good.out" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && ! grep -q '^VIOLATION' "$TMP/good.out"; then
  echo "ok: fixtures/good: no violation"
else
  cat "$TMP/good.out"
  fail "expected no violation (exit 0) over fixtures/good, got exit $rc"
fi

# 3. Without the default imports, the analysis must refuse, not pass.
"$RUNNER" --no-default-imports "$FIX/good" >"$TMP/noimports.out" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && grep -q 'unable to resolve class NonCPS' "$TMP/noimports.out"; then
  echo "ok: without Jenkins' default imports the runner refuses to pass (exit 2: NonCPS unresolved)"
else
  cat "$TMP/noimports.out"
  fail "without default imports the runner should fail with exit 2 on the unresolved NonCPS, got exit $rc"
fi

# 4. mlcd's own pipeline code.
"$RUNNER" >"$TMP/repo.out" 2>&1
rc=$?
cat "$TMP/repo.out"
if [ "$rc" -ne 0 ]; then
  fail "Jenkins (CPS) rules over vars/, src/ and the Jenkinsfiles: exit $rc (see above)"
fi

if [ "$failures" -ne 0 ]; then
  echo "cps-rules-fire: $failures failure(s)"
  exit 1
fi
echo "cps-rules-fire: passed"
