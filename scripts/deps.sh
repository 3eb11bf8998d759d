#!/usr/bin/env bash
# Installs what jgsched needs to build, test and run on Debian (12 or newer).
# Idempotent: installs only what is missing.  Needs root (or sudo).
set -euo pipefail
packages=(
  build-essential pkg-config meson ninja-build
  liblua5.4-dev libyaml-dev libjansson-dev libsqlite3-dev libcriterion-dev
  libnftables-dev nftables
  libcurl4-openssl-dev   # the Kubernetes backend's API client (libcurl, OpenSSL flavour)
  openssl                # its unit tests make a CA and certificates
  bash coreutils procps util-linux iproute2 iputils-ping curl python3 jq sqlite3
  clang   # the fuzz harnesses (scripts/fuzz.sh); libFuzzer's runtime is added below
  stress-ng   # to try the suite on a loaded machine (README, "Two commands")
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
apt_install() {
  echo "jgsched: installing $*"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
# The test Kubernetes API server (tests/k8s/apiserver) needs Node.js and npm.
# Judged by command, not by package: a Node.js from another repository
# (NodeSource's bundles npm) conflicts with Debian's npm package.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}"
fi
# libFuzzer's runtime (libclang_rt.fuzzer) ships in libclang-rt-N-dev for the
# installed clang-N (Debian 12: clang-14), which clang only recommends, and
# this script installs without recommends.
clang_major=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
if [ -n "$clang_major" ] &&
   ! ls "$(clang -print-resource-dir)"/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1; then
  apt_install "libclang-rt-$clang_major-dev"
fi
