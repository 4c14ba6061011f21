#!/usr/bin/env bash
# The quickstart: fake production and candidate model servers, a real
# `understudy serve`, and live traffic played through the Envoy-faithful
# driver in the two-filter set-up. Prints which arm served each request and
# fails if the split did not happen.
set -euo pipefail
cd "$(dirname "$0")/.."
# Under ctest the tree is already built; otherwise build it.
if [ -z "${UNDERSTUDY_SKIP_BUILD:-}" ]; then ./scripts/build.sh >/dev/null; fi
BIN=${BUILD_DIR:-build}
UNDERSTUDY=$BIN/sidecar/understudy
FAKE=$BIN/examples/fake-model/fake-model

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# wait_port FILE: waits for a "... port N" or ":N" line and prints N.
wait_port() {
  for _ in $(seq 1 100); do
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

"$FAKE" --port 0 --model gpt-4o --seed 1 >"$work/prod.out" 2>"$work/prod.err" &
pids+=($!)
"$FAKE" --port 0 --model gpt-5-mini --seed 2 >"$work/cand.out" 2>"$work/cand.err" &
pids+=($!)
"$UNDERSTUDY" serve --config examples/quickstart/understudy.yaml --listen 127.0.0.1:0 \
  --log-exchanges >"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)
prod_port=$(wait_port "$work/prod.out")
cand_port=$(wait_port "$work/cand.out")
sidecar_port=$(wait_port "$work/serve.out")
echo "production model  http://127.0.0.1:$prod_port"
echo "candidate model   http://127.0.0.1:$cand_port"
echo "understudy        ext_proc 127.0.0.1:$sidecar_port ($(sed -n 's/.*(\(weight [^)]*\)).*/\1/p' "$work/serve.out"))"
echo

"$UNDERSTUDY" replay --traffic examples/quickstart/traffic.jsonl \
  --extproc "127.0.0.1:$sidecar_port" \
  --upstream "production=http://127.0.0.1:$prod_port" \
  --upstream "candidate=http://127.0.0.1:$cand_port" | tee "$work/replay.out"

echo
echo "exchanges recorded by the sidecar: $(grep -c '^exchange ' "$work/serve.err" || true)"
grep -q 'candidate=' "$work/replay.out" && grep -q 'production=' "$work/replay.out" || {
  echo "demo failed: both arms should have served traffic" >&2
  exit 1
}
echo "demo ok: both arms served, sticky per user"
