#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing and running Tessera need.
# Idempotent: when everything is present it only checks and returns.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libgrpc++-dev libgrpc-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev
  libabsl-dev
  openmpi-bin libopenmpi-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libboost-dev libxxhash-dev nlohmann-json3-dev libpcre2-dev libutf8proc-dev libspdlog-dev libfmt-dev libyaml-cpp-dev
  libopenblas-openmp-dev
  clang-format ccache
  clang libclang-rt-dev libomp-dev  # tests/fuzz/run.sh: libFuzzer targets (clang + OpenMP)
  prometheus  # promtool: the tests check every /metrics exposition with it
)

# Node.js and npm run the OpenAI SDK in the HTTP API's tests: the machine's own
# when present, else Debian's.
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
