#!/usr/bin/env bash
# tests/e2e/prometheus_e2e.sh
# End to end with a real Prometheus: fake production and candidate models,
# `understudy serve` (rollout at a 50% canary stage, shadowing on), a real
# prometheus scraping the admin server's /metrics every second, and live
# traffic replayed through the Envoy-faithful driver. Passes when
# Prometheus's query API shows every live exchange the driver served, per
# arm, the rollout weight and phase, and the ext_proc counters.
#
# Env: BUILD_DIR (default ./build), PROMETHEUS (default /usr/bin/prometheus),
# E2E_TIMEOUT seconds per wait (default 60). Exits 77 (ctest: skipped) when
# prometheus is not installed. Prints "prometheus e2e ok" on success.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BUILD_DIR:-$ROOT/build}
UNDERSTUDY=$BIN/cli/understudy
FAKE=$BIN/examples/fake-model/fake-model
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
TIMEOUT=${E2E_TIMEOUT:-60}
TRAFFIC=$ROOT/examples/quickstart/traffic.jsonl

if [ ! -x "$PROMETHEUS" ]; then
  echo "prometheus e2e skipped: $PROMETHEUS not installed"
  exit 77
fi
for f in "$UNDERSTUDY" "$FAKE"; do
  [ -x "$f" ] || { echo "prometheus e2e: $f not built (BUILD_DIR=$BIN)" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
  local rc=$?
  # Newest first: prometheus, the sidecar, then the models.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$rc" -ne 0 ]; then
    for log in serve.out serve.err prometheus.log prod.err cand.err replay.out; do
      [ -s "$work/$log" ] || continue
      echo "---- $log (last 30 lines)" >&2
      tail -n 30 "$work/$log" >&2
    done
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

fail() {
  echo "prometheus e2e FAILED: $*" >&2
  exit 1
}

# wait_match FILE REGEX PID: polls FILE (up to TIMEOUT s) for a line matching
# the extended REGEX and prints the first match; fails early if PID exits.
wait_match() {
  local file=$1 regex=$2 pid=$3 deadline=$((SECONDS + TIMEOUT))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if grep -qE "$regex" "$file" 2>/dev/null; then
      grep -oE "$regex" "$file" | head -n 1
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || fail "process $pid exited before printing /$regex/ to $file"
    sleep 0.1
  done
  fail "timed out waiting for /$regex/ in $file"
}

# ---------------------------------------------------------------- models --
"$FAKE" --port 0 --model gpt-4o --seed 1 >"$work/prod.out" 2>"$work/prod.err" &
prod_pid=$!
pids+=("$prod_pid")
"$FAKE" --port 0 --model gpt-5-mini --seed 2 >"$work/cand.out" 2>"$work/cand.err" &
cand_pid=$!
pids+=("$cand_pid")
prod_port=$(wait_match "$work/prod.out" '(port |127\.0\.0\.1:)[0-9]+' "$prod_pid" | grep -oE '[0-9]+$')
cand_port=$(wait_match "$work/cand.out" '(port |127\.0\.0\.1:)[0-9]+' "$cand_pid" | grep -oE '[0-9]+$')

# --------------------------------------------------------------- sidecar --
# One canary stage at 50% that can neither be promoted (min_samples) nor
# judged stale (min_bake) during the test, so the weight stays put.
cat >"$work/understudy.yaml" <<EOF
extproc:
  listen: 127.0.0.1:0
  drain_timeout: 2s
admin:
  listen: 127.0.0.1:0
routing:
  sticky_header: x-user-id
  salt: prometheus-e2e
upstreams:
  production: {url: "http://127.0.0.1:$prod_port"}
  candidate:
    url: "http://127.0.0.1:$cand_port"
    request: {set_json: {model: gpt-5-mini}}   # the candidate serves only its own name
shadow:
  enabled: true
  sample_rate: 1.0
  timeout: 10s
rollout:
  tick_interval: 1s
  stages:
    - {percent: 50, min_bake: 1h, min_samples: 1000000}
    - 100
storage:
  path: "$work/data"
EOF
"$UNDERSTUDY" serve --config "$work/understudy.yaml" --listen 127.0.0.1:0 \
  >"$work/serve.out" 2>"$work/serve.err" &
serve_pid=$!
pids+=("$serve_pid")
extproc_port=$(wait_match "$work/serve.out" 'ext_proc listening on port [0-9]+' "$serve_pid" |
  grep -oE '[0-9]+$')
admin_port=$(wait_match "$work/serve.out" 'admin listening on 127\.0\.0\.1:[0-9]+' "$serve_pid" |
  grep -oE '[0-9]+$')
metrics_url="http://127.0.0.1:$admin_port/metrics"
curl -fsS "$metrics_url" >"$work/first_scrape.txt" || fail "GET $metrics_url failed"
grep -q '^# TYPE understudy_requests_total counter' "$work/first_scrape.txt" ||
  grep -q '^# TYPE understudy_extproc_streams_total counter' "$work/first_scrape.txt" ||
  fail "$metrics_url has no understudy_ metrics"

# ------------------------------------------------------------ prometheus --
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: understudy
    scrape_interval: 1s
    scrape_timeout: 1s
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:$admin_port"]
EOF

# Prometheus cannot report a port it picked itself, so choose a free one;
# if another process takes it first, try again with another.
port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
prom_port=""
for attempt in 1 2 3 4 5; do
  candidate_port=$((20000 + RANDOM % 40000))
  port_is_free "$candidate_port" || continue
  "$PROMETHEUS" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$candidate_port" --log.level=warn \
    >"$work/prometheus.log" 2>&1 &
  prom_pid=$!
  pids+=("$prom_pid")
  deadline=$((SECONDS + TIMEOUT))
  while [ "$SECONDS" -lt "$deadline" ] && kill -0 "$prom_pid" 2>/dev/null; do
    if curl -fsS "http://127.0.0.1:$candidate_port/-/ready" >/dev/null 2>&1; then
      prom_port=$candidate_port
      break
    fi
    sleep 0.2
  done
  [ -n "$prom_port" ] && break
  kill "$prom_pid" 2>/dev/null || true
  wait "$prom_pid" 2>/dev/null || true
  grep -q 'address already in use' "$work/prometheus.log" || fail "prometheus did not start"
done
[ -n "$prom_port" ] || fail "no free port for prometheus after 5 attempts"
prom="http://127.0.0.1:$prom_port"

# query EXPR: prints the first sample's value of an instant query, or
# nothing when the result is empty.
query() {
  curl -fsS --get --data-urlencode "query=$1" "$prom/api/v1/query" |
    sed -n 's/.*"value":\[[^,]*,"\([^"]*\)"\].*/\1/p'
}

# wait_query EXPR: polls until EXPR returns a sample; prints its value.
wait_query() {
  local expr=$1 deadline=$((SECONDS + TIMEOUT)) value
  while [ "$SECONDS" -lt "$deadline" ]; do
    value=$(query "$expr" || true)
    if [ -n "$value" ]; then
      echo "$value"
      return 0
    fi
    sleep 0.5
  done
  fail "prometheus never returned a sample for: $expr (last target state: $(
    curl -fsS "$prom/api/v1/targets" | grep -oE '"(health|lastError)":"[^"]*"' | tr '\n' ' '))"
}

wait_query 'up{job="understudy"} == 1' >/dev/null
echo "prometheus 127.0.0.1:$prom_port scraping understudy /metrics on 127.0.0.1:$admin_port"

# --------------------------------------------------------------- traffic --
"$UNDERSTUDY" replay --traffic "$TRAFFIC" --extproc "127.0.0.1:$extproc_port" \
  --upstream "production=http://127.0.0.1:$prod_port" \
  --upstream "candidate=http://127.0.0.1:$cand_port" >"$work/replay.out" 2>&1 ||
  fail "replay failed"
served_prod=$(sed -n 's/.*production=\([0-9]*\).*/\1/p' "$work/replay.out" | tail -n 1)
served_cand=$(sed -n 's/.*candidate=\([0-9]*\).*/\1/p' "$work/replay.out" | tail -n 1)
[ -n "$served_prod" ] && [ -n "$served_cand" ] || fail "cannot read the served split from replay"
[ "$served_cand" -gt 0 ] && [ "$served_prod" -gt 0 ] ||
  fail "both arms should serve at 50% (production=$served_prod candidate=$served_cand)"
echo "replay served production=$served_prod candidate=$served_cand"

# ------------------------------------------------------------ assertions --
# Every live exchange the driver saw served is counted once, per arm.
wait_query "sum(understudy_requests_total{arm=\"candidate\",source=\"live\"}) == $served_cand" \
  >/dev/null
wait_query "sum(understudy_requests_total{arm=\"production\",source=\"live\"}) == $served_prod" \
  >/dev/null
weight=$(wait_query 'understudy_rollout_weight_ratio')
[ "$weight" = "0.5" ] || fail "understudy_rollout_weight_ratio is $weight, want 0.5"
wait_query 'understudy_rollout_phase{phase="canary"} == 1' >/dev/null
phases=$(wait_query 'sum(understudy_rollout_phase)')
[ "$phases" = "1" ] || fail "sum(understudy_rollout_phase) is $phases, want 1 (one-hot)"
streams=$(wait_query "understudy_extproc_streams_total >= $((served_prod + served_cand))")
errors=$(query 'sum(understudy_errors_total{source="live"})')
[ -z "$errors" ] || [ "$errors" = "0" ] || fail "live errors against healthy fake models: $errors"
# The shadow client mirrors production's live traffic (sample_rate 1.0).
shadow_sent=$(wait_query 'sum(understudy_shadow_requests_total{outcome="sent"}) > 0')
shadow_seen=$(wait_query 'sum(understudy_requests_total{source="shadow"}) > 0')
p95=$(query 'histogram_quantile(0.95, sum by (le) (rate(understudy_request_duration_seconds_bucket{source="live"}[1m])))')

echo "requests_total live: production=$served_prod candidate=$served_cand (as served)"
echo "rollout weight ratio $weight, phase canary, ext_proc streams $streams, live p95 ${p95:-n/a} s"
echo "shadow: sent $shadow_sent, observed $shadow_seen"
echo "prometheus e2e ok"
