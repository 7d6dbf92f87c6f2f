#!/usr/bin/env bash
# Installs everything a fresh Debian 12 machine needs, then builds the native FAISS library.
#   apt: the compiler, FAISS (static lib + C API headers), static OpenBLAS (both variants),
#        python3-faiss (test oracle), Fashion-MNIST (sample data), GNU time (benchmarks),
#        debootstrap (the compiled binary's bare-system test, tests/compile_chroot.test.ts),
#        cmake, ninja, dpkg-dev, xz-utils (the AVX2 FAISS, built from Debian's source),
#        slurm-wlm + munge (the one-node Slurm cluster of tasks/slurm_cluster.sh, distributed-build tests),
#        chromium (headless rendering test of the HTML report, tests/report_html.test.ts);
#   npm: bun, deno and the libraries, pinned by package-lock.json.
# Then compiles FAISS's AVX2 variant once (tasks/build_faiss.ts; minutes, cached in
# ~/.cache/autofaiss/faiss-<key>/) and links both library variants (tasks/build_native.ts).
# Safe to run again: it only installs what is missing, and a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  g++ libfaiss-dev libopenblas-dev libopenblas-openmp-dev libopenblas-pthread-dev
  python3-faiss python3-numpy dataset-fashion-mnist time ca-certificates debootstrap
  cmake ninja-build dpkg-dev xz-utils chromium
  slurm-wlm munge
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "+ apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v npm >/dev/null; then
  echo "setup: npm is missing (install Node.js 20+ with npm)" >&2
  exit 1
fi
echo "+ npm ci"
npm ci --no-audit --no-fund --loglevel=error

echo "+ bun tasks/build_faiss.ts"
node_modules/.bin/bun tasks/build_faiss.ts

echo "+ bun tasks/build_native.ts --no-test"
node_modules/.bin/bun tasks/build_native.ts --no-test
