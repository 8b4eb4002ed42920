#!/usr/bin/env bash
# Install what is needed (scripts/setup.sh), then run the whole test suite.
# Extra arguments go to pytest, e.g. ./scripts/test.sh tests/unit -x
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
./scripts/setup.sh
# Any non-zero pytest status fails, including 5 (no tests collected): CI passes only on real tests.
# Tests run in THRESHER_TEST_WORKERS processes (pytest-xdist), a whole file per worker so that a
# module's shared farm starts once: most tests wait on real servers, agents and renderers, so three
# workers keep two cores busy. THRESHER_TEST_WORKERS=0 runs everything in this one process. The 25
# slowest tests are listed at the end, so that a CI log shows where the time goes.
exec .venv/bin/python -m pytest -q --durations=25 -n "${THRESHER_TEST_WORKERS:-3}" --dist loadfile "$@"
