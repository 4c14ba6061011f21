#!/usr/bin/env bash
# The quickstart, end to end, in about two minutes:
#   fake production (gpt-4o) and fake candidate (gpt-5-mini) model servers,
#   a real `understudy serve`, and live traffic played through the
#   Envoy-faithful driver in the recommended two-filter set-up.
# The story: shadow comparisons → 1% → 5% → 25% as the judge promotes;
# then a regression is injected into the candidate (half its answers fail)
# and the sidecar rolls back by itself. Prints the decision log and writes
# the migration report. Exits non-zero if any of that did not happen.
set -euo pipefail
cd "$(dirname "$0")/.."
# Under ctest the tree is already built; otherwise build it.
if [ -z "${UNDERSTUDY_SKIP_BUILD:-}" ]; then ./scripts/build.sh >/dev/null; fi
BIN=${BUILD_DIR:-build}
UNDERSTUDY=$BIN/cli/understudy
FAKE=$BIN/examples/fake-model/fake-model
DEADLINE_S=${DEMO_DEADLINE_S:-170}
INJECT_AT_PERCENT=${DEMO_INJECT_AT_PERCENT:-25}

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${DEMO_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
fail() {
  echo "demo failed: $*" >&2
  echo "--- sidecar stderr (last 30 lines)" >&2
  tail -30 "$work/serve.err" >&2 || true
  exit 1
}

# wait_port FILE: waits for a "... port N" or ":N" line and prints N.
wait_port() {
  for _ in $(seq 1 200); do
    if grep -qE '(port |127\.0\.0\.1:)[0-9]+' "$1" 2>/dev/null; then
      grep -oE '(port |127\.0\.0\.1:)[0-9]+' "$1" | head -1 | grep -oE '[0-9]+$'
      return 0
    fi
    sleep 0.1
  done
  echo "timed out waiting for $1" >&2
  cat "$1" >&2 || true
  return 1
}

# Each fake serves only its own model name to its own key, as a provider
# does: the clients hold production's key (examples/quickstart/traffic.jsonl);
# the sidecar gives the canary arm the candidate's key and model name
# (upstreams.candidate in examples/quickstart/understudy.yaml).
export PRODUCTION_API_KEY=demo-key-not-stored
CANDIDATE_API_KEY="sk-candidate-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
export CANDIDATE_API_KEY
"$FAKE" --port 0 --model gpt-4o --seed 1 --latency-ms 40 --ttft-ms 15 \
  --api-key-env PRODUCTION_API_KEY >"$work/prod.out" 2>"$work/prod.err" &
pids+=($!)
# The candidate paraphrases some answers and gets a few facts wrong: shadow
# comparisons show minor and major differences, within the agreement gate.
"$FAKE" --port 0 --model gpt-5-mini --seed 2 --latency-ms 40 --ttft-ms 15 \
  --paraphrase-rate 0.15 --wrong-answer-rate 0.02 --api-key-env CANDIDATE_API_KEY \
  >"$work/cand.out" 2>"$work/cand.err" &
pids+=($!)
prod_port=$(wait_port "$work/prod.out")
cand_port=$(wait_port "$work/cand.out")
sed -e "s#http://127.0.0.1:8001#http://127.0.0.1:$prod_port#" \
    -e "s#http://127.0.0.1:8002#http://127.0.0.1:$cand_port#" \
    examples/quickstart/understudy.yaml >"$work/understudy.yaml"

"$UNDERSTUDY" serve --config "$work/understudy.yaml" --listen 127.0.0.1:0 \
  --admin 127.0.0.1:0 --data "$work/data" >"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)
sidecar_port=$(wait_port "$work/serve.out")
for _ in $(seq 1 100); do grep -q 'admin listening' "$work/serve.out" && break; sleep 0.1; done
admin_port=$(grep -oE 'admin listening on 127\.0\.0\.1:[0-9]+' "$work/serve.out" | grep -oE '[0-9]+$') ||
  fail "the sidecar did not start its admin API"
ADMIN="http://127.0.0.1:$admin_port"
echo "production model  http://127.0.0.1:$prod_port   (gpt-4o)"
echo "candidate model   http://127.0.0.1:$cand_port   (gpt-5-mini)"
echo "understudy        ext_proc 127.0.0.1:$sidecar_port, admin $ADMIN"
echo "                  $(sed -n 's/^understudy: \(.*rollout.*\)/\1/p' "$work/serve.out" | head -1)"
echo

# Live traffic: 3000 users, 80 requests/s, through the two-filter set-up.
"$UNDERSTUDY" replay --traffic examples/quickstart/traffic.jsonl \
  --extproc "127.0.0.1:$sidecar_port" \
  --upstream "production=http://127.0.0.1:$prod_port" \
  --upstream "candidate=http://127.0.0.1:$cand_port" \
  --duration "$DEADLINE_S" --rate 80 --users 3000 --concurrency 8 --progress 10 \
  >"$work/replay.out" 2>"$work/replay.err" &
replay_pid=$!
pids+=($replay_pid)

# field NAME JSON: the first string or number value of "NAME" in JSON.
field() { grep -oE "\"$1\" *: *\"?[A-Za-z0-9_.]*" <<<"$2" | head -1 | sed -E 's/.*: *"?//'; }

start=$(date +%s)
injected=""
last=""
rolled_back=""
while :; do
  now=$(( $(date +%s) - start ))
  [ "$now" -gt "$DEADLINE_S" ] && break
  state=$(curl -sf "$ADMIN/v1/rollout" || true)
  phase=$(field phase "$state")
  bp=$(field weight_basis_points "$state"); bp=${bp:-0}
  stage=$(field stage_index "$state"); stage=${stage:-0}
  line="phase ${phase#PHASE_} stage $stage weight $((bp / 100))%"
  if [ "$line" != "$last" ]; then
    printf '[%4ss] %s\n' "$now" "$line"
    last=$line
  fi
  if [ "$phase" = "PHASE_ROLLED_BACK" ]; then rolled_back=1; break; fi
  if [ -z "$injected" ] && [ "$bp" -ge $((INJECT_AT_PERCENT * 100)) ]; then
    printf '[%4ss] injecting a regression: the candidate now fails half its requests\n' "$now"
    curl -sf -X POST -H 'content-type: application/json' \
      -d '{"error_rate":0.5}' "http://127.0.0.1:$cand_port/control" >/dev/null
    injected=1
  fi
  sleep 1
done
kill "$replay_pid" 2>/dev/null || true
echo
echo "--- traffic (per 10 s)"
grep '^\[' "$work/replay.out" | tail -20 || true
echo
echo "--- shadow comparisons: major differences, newest first"
"$UNDERSTUDY" diffs --admin "$ADMIN" --verdict major_diff --limit 3 || true
echo
echo "--- decision log"
"$UNDERSTUDY" status --admin "$ADMIN" || true
"$UNDERSTUDY" report --admin "$ADMIN" --format md >"$work/report.md" || fail "no report"
echo
# The decision log (from the report): every transition with its reason, and
# the gate evidence behind the rollback.
sed -n '/^## Rollout decisions/,/^### /p' "$work/report.md" | sed '$d'
awk '/^### Decision [0-9]+: rollback/{p=1} p&&/^## /{exit} p' "$work/report.md" | grep -E '^\|' || true
mkdir -p "${DEMO_REPORT_DIR:-$BIN}"
cp "$work/report.md" "${DEMO_REPORT_DIR:-$BIN}/quickstart-report.md"
echo
echo "report written to ${DEMO_REPORT_DIR:-$BIN}/quickstart-report.md"

[ -n "$injected" ] || fail "the rollout never reached ${INJECT_AT_PERCENT}% (last: $last)"
[ -n "$rolled_back" ] || fail "the sidecar did not roll back within ${DEADLINE_S}s (last: $last)"
grep -q 'VIOLATION' "$work/replay.out" && fail "protocol violations (see replay output)"
# The canary arm really reached the candidate: its fake served requests and
# refused none for a wrong model name or key.
cand_stats=$(curl -sf "http://127.0.0.1:$cand_port/stats") || fail "no candidate stats"
echo "candidate model saw: $cand_stats"
[ "$(field served "$cand_stats")" -gt 0 ] || fail "the candidate served nothing"
[ "$(field model_not_found "$cand_stats")" = 0 ] || fail "the candidate got the wrong model name"
[ "$(field unauthorized "$cand_stats")" = 0 ] || fail "the candidate got the wrong key"
echo "demo ok: shadow → canary stages → injected regression → automatic rollback in $(( $(date +%s) - start ))s"
