#!/usr/bin/env bash
# Builds everything and runs the whole test suite (unit, integration and
# end-to-end tests, all through ctest).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 600 -j2 "$@"
