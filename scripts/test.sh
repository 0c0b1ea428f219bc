#!/usr/bin/env bash
# The test command: set up (idempotent), then run the whole suite against real Docker, git
# and the sandbox over loopback. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
