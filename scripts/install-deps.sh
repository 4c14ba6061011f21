#!/usr/bin/env bash
# Installs the Debian 12 packages Understudy builds and tests with.
# Idempotent and quiet when everything is already there.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev libabsl-dev
  librocksdb-dev libsimdjson-dev nlohmann-json3-dev libyaml-cpp-dev libcurl4-openssl-dev
  prometheus-cpp-dev libbenchmark-dev libgtest-dev libgmock-dev
  libcli11-dev libcpp-httplib-dev libspdlog-dev libboost-math-dev libre2-dev libssl-dev
  zlib1g-dev libbrotli-dev libzstd-dev
  curl ca-certificates
  chromium prometheus fonts-dejavu-core
  mmdebstrap eatmydata python3-yaml jq iproute2   # scripts/build-image.sh, tests/image
  etcd-server                                     # fleet mode tests: a real etcd on loopback
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing: ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
