#!/usr/bin/env bash
# The main job on the local lab: set up, bring the lab up, validate the inventory, push an image
# the way a build does, and show what landed in which registry.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh
lab/labctl up >/dev/null
export PATH="$repo/.venv/bin:$PATH"
ansible-playbook -i inventories/lab playbooks/site.yml
lab/labctl push --namespace myproject --stream app --tag v1 --layers 5
lab/labctl where
