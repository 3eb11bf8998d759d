#!/usr/bin/env bash
# Installs what jgsched needs to build, test and run on Debian (12 or newer).
# Idempotent: installs only what is missing.  Needs root (or sudo).
set -euo pipefail
packages=(
  build-essential pkg-config meson ninja-build
  liblua5.4-dev libyaml-dev libjansson-dev libsqlite3-dev libcriterion-dev
  libnftables-dev nftables
  bash coreutils procps util-linux iproute2 iputils-ping curl python3 jq sqlite3
  stress-ng
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "jgsched: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
