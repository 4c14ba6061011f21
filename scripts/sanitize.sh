#!/usr/bin/env bash
# Builds the test suite with AddressSanitizer + UndefinedBehaviorSanitizer in
# its own build directory and runs it through ctest, printing how long the
# build and the run took:
#
#   scripts/sanitize.sh [CTEST_ARGS...]        # e.g. -R 'storage|compare'
#
# Environment: SANITIZE_BUILD_DIR (default build-asan), SANITIZERS (default
# address,undefined), SANITIZE_TARGETS (default: everything).
# Any ASan or UBSan report fails the test that produced it
# (-fno-sanitize-recover, halt_on_error).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${SANITIZE_BUILD_DIR:-build-asan}
sanitizers=${SANITIZERS:-address,undefined}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
start=$SECONDS
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DUNDERSTUDY_SANITIZE="$sanitizers" "${launcher[@]}" >/dev/null
# shellcheck disable=SC2086
nice -n 10 cmake --build "$build" ${SANITIZE_TARGETS:+--target $SANITIZE_TARGETS}
built=$((SECONDS - start))
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
rc=0
# The image test is left out: it packs this build's binary into the release
# image, and an instrumented binary is neither what ships nor within the
# image's size budget (tests/image/image_test.sh).
(cd "$build" && nice -n 10 ctest --output-on-failure --timeout 1200 -j2 -LE image "$@") || rc=$?
echo "sanitize.sh: build ${built}s, tests $((SECONDS - start - built))s, ctest exit $rc"
exit $rc
