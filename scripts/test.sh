#!/usr/bin/env bash
# The whole test suite: set up, bring the lab up (the registry cluster's node included), run pytest
# (unit, integration on the lab, ansible-test sanity). Extra arguments go to pytest.
# Lanes (pytest-xdist, tests/conftest.py schedules them): the integration tests that share the
# environment registries run in order on one worker; on the other, those that share nothing with
# them (tests/conftest.py's BESIDE), then the unit and sanity tests; -n 0 runs everything in one
# process. --durations prints the 40 slowest tests (where the suite's time goes).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh
lab/labctl up >/dev/null
export PATH="$repo/.venv/bin:$PATH"
exec python -m pytest -n 2 --durations=40 "$@"
