#!/usr/bin/env bash
# Install what is needed (scripts/setup.sh), then run the demo farm: a server and local agents
# rendering real frames. Extra arguments go to `thresher demo`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
./scripts/setup.sh
exec .venv/bin/thresher demo "$@"
