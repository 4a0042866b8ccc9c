#!/usr/bin/env bash
# The fleet tier (CONTRIBUTING.md, "Test tiers"): the tests marked fleet, on a lab of 16 consumer
# clusters (4 test, 4 uat, 8 prod: lab/fleet.py). Sets up, brings the lab to 16 consumers (down
# first when it has another count: labctl refuses to change the count of a running lab), runs
# pytest -m fleet --fleet over tests/integration in one process, and leaves the lab at 16. Extra
# arguments go to pytest. Not part of scripts/test.sh or .ci/run: without --fleet, pytest skips
# the tests marked fleet (tests/conftest.py).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
consumers=16
bash scripts/setup.sh
export PATH="$repo/.venv/bin:$PATH"
count="$(PYTHONPATH="$repo" python -c 'import sys; from lab import fleet; print(fleet.consumer_count(sys.argv[1]))' \
  "$(lab/labctl inventory)")"
if [ "$count" != "$consumers" ]; then
  echo "test-fleet: the lab has $count consumer clusters; bringing it down to start it with $consumers"
  lab/labctl down >/dev/null
fi
lab/labctl up --consumers "$consumers" >/dev/null
status=0
python -m pytest -n 0 --durations=10 --fleet -m fleet tests/integration "$@" || status=$?
echo "test-fleet: the lab stays at $consumers consumer clusters; back to the lab's three: lab/labctl down; lab/labctl up --consumers 3"
exit "$status"
