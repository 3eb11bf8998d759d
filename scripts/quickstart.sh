#!/usr/bin/env bash
# Installs what is missing, builds, and runs examples/quickstart.yaml on the
# local backend, following its progress to the end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
exec build/jgsched submit examples/quickstart.yaml --infra local
