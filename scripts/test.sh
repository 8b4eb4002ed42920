#!/usr/bin/env bash
# Install what is needed (scripts/setup.sh), then run the whole test suite.
# Extra arguments go to pytest, e.g. ./scripts/test.sh tests/unit -x
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
./scripts/setup.sh
# Any non-zero pytest status fails, including 5 (no tests collected): CI passes only on real tests.
exec .venv/bin/python -m pytest -q "$@"
