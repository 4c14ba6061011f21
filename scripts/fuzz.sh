#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with clang 14 (ASan + UBSan) and runs
# each for a given time, then prints one table row per target:
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]    # default 600 s, all
#
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_JOBS (targets run
# at once, default 1), FUZZ_RSS_MB (default 2048), FUZZ_NO_BUILD=1 (run the
# binaries already built). Seeds are read from
# fuzz/corpus/<target>/ and never written; new inputs go to
# $FUZZ_BUILD_DIR/corpus/<target>/, crashes to $FUZZ_BUILD_DIR/artifacts/.
# Exits non-zero when any target found a crash, leak, timeout or UB report.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
seconds=${1:-600}
shift || true
build=${FUZZ_BUILD_DIR:-build-fuzz}
jobs=${FUZZ_JOBS:-1}
rss=${FUZZ_RSS_MB:-2048}
all_targets=(answer_parser_fuzzer request_parser_fuzzer translate_fuzzer content_decoder_fuzzer
             feedback_fuzzer config_fuzzer admin_fuzzer stream_session_fuzzer)
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${all_targets[@]}")

# clang 14 with libFuzzer's runtime (Debian: libclang-rt-14-dev).
if ! command -v clang++-14 >/dev/null ||
   ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "fuzz.sh: installing clang-14 and libclang-rt-14-dev" >&2
  sudo_cmd=""; [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq clang-14 libclang-rt-14-dev llvm-14
fi

if [[ -z ${FUZZ_NO_BUILD:-} ]]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DUNDERSTUDY_FUZZ=ON \
    "${launcher[@]}" >/dev/null
  nice -n 10 cmake --build "$build" --target "${targets[@]}"
fi

mkdir -p "$build/artifacts" "$build/logs"
run_one() {
  local t=$1
  local work="$build/corpus/$t"
  mkdir -p "$work"
  local log="$build/logs/$t.log"
  local start=$SECONDS rc=0
  # -timeout: one input may take at most 10 s; -rss_limit_mb: memory bound.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  nice -n 10 "$build/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb="$rss" \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
    "$work" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  local elapsed=$((SECONDS - start))
  local runs
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  local result=ok
  if [[ $rc -ne 0 ]]; then
    result="FAIL rc=$rc: $(grep -m1 -oE 'ERROR: [A-Za-z]+: [^ ]+|runtime error: .{0,60}|deadly signal|Timeout|out-of-memory' "$log" || echo see "$log")"
  fi
  printf '%s\t%s\t%s\t%s\n' "$t" "${runs:-?}" "$elapsed" "$result" >"$build/logs/$t.row"
}

running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [[ $running -ge $jobs ]]; then wait -n || true; running=$((running - 1)); fi
done
wait

failed=0
printf '%-24s %12s %8s  %s\n' target runs seconds result
for t in "${targets[@]}"; do
  IFS=$'\t' read -r name runs secs result <"$build/logs/$t.row"
  printf '%-24s %12s %8s  %s\n' "$name" "$runs" "$secs" "$result"
  [[ $result == ok ]] || failed=1
done
exit $failed
