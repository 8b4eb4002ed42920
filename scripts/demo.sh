#!/usr/bin/env bash
# Install what is needed (scripts/setup.sh), then run the demo farm: a server and local agents
# rendering real frames. The farm and its dashboard stay up (a one-time login link is printed) until
# Ctrl+C; pass --exit to stop as soon as the job is done (scripts, CI). Extra arguments go to `thresher demo`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
./scripts/setup.sh
exec .venv/bin/thresher demo "$@"
