#!/usr/bin/env bash
# `understudy check-config` on the config the Helm chart mounts
# (charts/understudy, templates/configmap-understudy.yaml rendered with
# render_chart.py, since there is no helm here), as docs/operations.md ("A
# shadow stage needs shadowing") documents it:
#   1. the chart's default values: exit 0; without a `shadow:` section the
#      default plan's shadow stage is skipped with a warning (text on
#      stderr, and under "warnings" with -o json);
#   2. values that write a plan starting with a shadow stage (percent 0)
#      and no `shadow:` section: exit 2, the error naming rollout.stages[0];
#   3. the same plan with both upstream URLs and `shadow:`: exit 0, no
#      warning.
# Runs the build's binary directly (no root, no image): the image test
# (image_test.sh) repeats case 1 inside the image, with the chart's mounts.
#
# Env: UNDERSTUDY_BINARY (the understudy binary under test).
set -euo pipefail
export LC_ALL=C.UTF-8
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CHART=$ROOT/charts/understudy
BIN=${UNDERSTUDY_BINARY:?set UNDERSTUDY_BINARY to the understudy binary}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/understudy-chart-config.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# render VALUES_OVERLAY OUT: the ConfigMap's understudy.yaml ("" = defaults),
# with the files the pod mounts from Secrets (paths under
# /etc/understudy-secrets/, e.g. admin.token_file) provided as the pod
# would have them: a token in a file, here under $TMP (the rendered path is
# rewritten to it; nothing else changes).
render() {
  local overlay=()
  [ -n "$1" ] && overlay=(-f "$1")
  /usr/bin/python3 "$HERE/render_chart.py" "$CHART" configmap-understudy.yaml \
    --data understudy.yaml "${overlay[@]}" >"$2"
  local path
  for path in $(grep -o '/etc/understudy-secrets/[^"[:space:]]*' "$2" | sort -u); do
    mkdir -p "$(dirname "$TMP/secrets${path#/etc/understudy-secrets}")"
    head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TMP/secrets${path#/etc/understudy-secrets}"
  done
  sed -i "s#/etc/understudy-secrets/#$TMP/secrets/#g" "$2"
}

# check CONFIG: runs check-config (text and json); sets rc, out, err, json, json_rc.
check() {
  rc=0
  "$BIN" check-config "$1" >"$TMP/out" 2>"$TMP/err" || rc=$?
  out=$(cat "$TMP/out") err=$(cat "$TMP/err")
  json_rc=0
  json=$("$BIN" check-config -o json "$1" 2>/dev/null) || json_rc=$?
}

# json_field EXPR: evaluates EXPR on the last -o json output (j).
json_field() {
  /usr/bin/python3 -c 'import json, sys; j = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' \
    "$json" "$1"
}

skip_warning="rollout: the default plan's shadow stage is skipped because there is no \`shadow:\` section; the rollout starts at 1% live traffic"

echo "=== 1. the chart's default values"
render "" "$TMP/default.yaml"
sed 's/^/  /' "$TMP/default.yaml"
check "$TMP/default.yaml"
[ "$rc" = 0 ] || fail "check-config exited $rc: $err"
[ "$out" = "$TMP/default.yaml: ok" ] || fail "stdout: '$out'"
[ "$json_rc" = 0 ] || fail "check-config -o json exited $json_rc"
[ "$(json_field 'j["ok"]')" = True ] || fail "-o json: $json"
if grep -q '^shadow:' "$TMP/default.yaml"; then
  # The chart shadows by default: the plan keeps its shadow stage.
  [ -z "$err" ] || fail "warnings with a shadow: section: $err"
  [ "$(json_field 'len(j["warnings"])')" = 0 ] || fail "-o json warnings: $json"
else
  grep -qF "warning: $skip_warning" "$TMP/err" || fail "no skipped-shadow-stage warning on stderr: '$err'"
  [ "$(json_field 'len(j["warnings"])')" = 1 ] || fail "-o json warnings: $json"
  json_field 'j["warnings"][0]' | grep -qF "$skip_warning" || fail "-o json warning: $json"
fi

echo "=== 2. a plan that starts with a shadow stage, no shadow: section"
cat >"$TMP/shadow-plan.yaml" <<'EOF'
config:
  rollout:
    stages: [0, 10, 100]
EOF
render "$TMP/shadow-plan.yaml" "$TMP/shadow-plan-config.yaml"
grep -q '^shadow:' "$TMP/shadow-plan-config.yaml" && fail "the overlay rendered a shadow: section"
check "$TMP/shadow-plan-config.yaml"
[ "$rc" = 2 ] || fail "check-config exited $rc, want 2 (stdout '$out', stderr '$err')"
case "$err" in
  "rollout.stages[0]: a shadow stage (percent 0) needs shadow comparisons, but there is no \`shadow:\` section"*) ;;
  *) fail "stderr does not name rollout.stages[0] and the reason: '$err'" ;;
esac
[ -z "$out" ] || fail "stdout on error: '$out'"
[ "$json_rc" = 2 ] || fail "check-config -o json exited $json_rc, want 2"
[ "$(json_field 'j["ok"]')" = False ] || fail "-o json: $json"
json_field 'j["error"]' | grep -qF 'rollout.stages[0]: a shadow stage' || fail "-o json error: $json"

echo "=== 3. the same plan with upstreams and shadow:"
cat >"$TMP/shadowing.yaml" <<'EOF'
config:
  upstreams:
    productionUrl: http://production-llm:80
    candidateUrl: https://api.example.com
  shadow:
    enabled: true
    sample_rate: 0.5
  rollout:
    stages: [0, 10, 100]
EOF
render "$TMP/shadowing.yaml" "$TMP/shadowing-config.yaml"
check "$TMP/shadowing-config.yaml"
[ "$rc" = 0 ] || fail "check-config exited $rc: $err"
[ -z "$err" ] || fail "stderr: '$err'"
[ "$(json_field 'j["ok"] and not j["warnings"]')" = True ] || fail "-o json: $json"

if [ "$failures" -gt 0 ]; then
  echo "chart config test: $failures failure(s)"
  exit 1
fi
echo "chart config ok"
