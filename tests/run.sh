#!/usr/bin/env bash
# Set up a fresh machine and run the whole test suite: bash tests/run.sh [pytest options]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../.ci/setup"
exec python -m pytest "$@"
