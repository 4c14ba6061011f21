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
#      warning;
#   4. fleet mode (docs/fleet.md) with an existing etcd, TLS and auth
#      Secrets: the `coordination:` section check-config accepts (exit 0,
#      no warning), naming the mounted files;
#   5. fleet mode with the bundled etcd: its Service as the endpoint;
#   6. replicaCount > 1 without coordination: the chart refuses to render;
#   7. signed feedback tokens: the mounted key file is read (exit 0).
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

echo "=== 4. fleet mode with an existing etcd, TLS and auth"
cat >"$TMP/fleet.yaml" <<'EOF2'
replicaCount: 3
coordination:
  etcd:
    endpoints: ["etcd-0.etcd.infra:2379", "etcd-1.etcd.infra:2379"]
    prefix: /understudy/checkout-bot/
    tls: {existingSecret: etcd-client}
    auth: {username: understudy, existingSecret: etcd-password}
EOF2
render "$TMP/fleet.yaml" "$TMP/fleet-config.yaml"
sed -n '/^coordination:/,$p' "$TMP/fleet-config.yaml" | sed 's/^/  /'
grep -q '^coordination:' "$TMP/fleet-config.yaml" || fail "no coordination: section"
grep -q '^  member:' "$TMP/fleet-config.yaml" && fail "member is set (the sidecar's default names it after the pod)"
grep -q "password_file: $TMP/secrets/etcd-auth/password" "$TMP/fleet-config.yaml" || fail "no password_file"
grep -q "key_file: $TMP/secrets/etcd-tls/tls.key" "$TMP/fleet-config.yaml" || fail "no tls.key_file"
check "$TMP/fleet-config.yaml"
[ "$rc" = 0 ] || fail "check-config exited $rc: $err"
[ "$out" = "$TMP/fleet-config.yaml: ok" ] || fail "stdout: '$out'"
[ -z "$(grep -vF "warning: $skip_warning" "$TMP/err")" ] || fail "stderr: '$err'"
[ "$(json_field 'j["ok"]')" = True ] || fail "-o json: $json"
# The same config with the password file gone: check-config reads it.
rm "$TMP/secrets/etcd-auth/password"
check "$TMP/fleet-config.yaml"
[ "$rc" = 2 ] || fail "check-config exited $rc without the password file, want 2"
case "$err" in
  *"coordination.etcd.auth.password_file"*) ;;
  *) fail "stderr does not name coordination.etcd.auth.password_file: '$err'" ;;
esac

echo "=== 5. fleet mode with the bundled etcd"
cat >"$TMP/bundled.yaml" <<'EOF2'
replicaCount: 2
coordination:
  etcd:
    bundled: {enabled: true}
EOF2
render "$TMP/bundled.yaml" "$TMP/bundled-config.yaml"
grep -qF -- '- "understudy-etcd.default.svc:2379"' "$TMP/bundled-config.yaml" ||
  fail "the bundled etcd is not the endpoint: $(cat "$TMP/bundled-config.yaml")"
grep -qF 'prefix: "/understudy/understudy/"' "$TMP/bundled-config.yaml" || fail "default prefix"
check "$TMP/bundled-config.yaml"
[ "$rc" = 0 ] || fail "check-config exited $rc: $err"
# Nothing but the default plan's skipped-shadow-stage warning (no shadow: here).
[ -z "$(grep -vF "warning: $skip_warning" "$TMP/err")" ] || fail "stderr: '$err'"

echo "=== 6. replicaCount > 1 without coordination"
printf 'replicaCount: 2\n' >"$TMP/replicas.yaml"
render_rc=0
/usr/bin/python3 "$HERE/render_chart.py" "$CHART" configmap-understudy.yaml --data understudy.yaml \
  -f "$TMP/replicas.yaml" >"$TMP/replicas-config.yaml" 2>"$TMP/replicas-err" || render_rc=$?
[ "$render_rc" = 1 ] || fail "render exited $render_rc, want 1 (the chart's fail)"
grep -qF 'replicaCount > 1 needs coordination' "$TMP/replicas-err" ||
  fail "no guard message: $(cat "$TMP/replicas-err")"

echo "=== 7. signed feedback tokens"
printf 'config:\n  feedback: {signedTokens: true}\n' >"$TMP/signed.yaml"
render "$TMP/signed.yaml" "$TMP/signed-config.yaml"
grep -q 'signing_key_file: ' "$TMP/signed-config.yaml" || fail "no signing_key_file rendered"
check "$TMP/signed-config.yaml"
[ "$rc" = 0 ] || fail "check-config exited $rc: $err"

if [ "$failures" -gt 0 ]; then
  echo "chart config test: $failures failure(s)"
  exit 1
fi
echo "chart config ok"
