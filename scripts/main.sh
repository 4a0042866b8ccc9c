#!/usr/bin/env bash
# The main job on the local lab: set up, bring the lab up, run the site playbook (inventory
# validation, then roles/registry_cluster: the environment registries and their token server as
# pods on the registry cluster), push an image the way a build does, promote it test -> uat -> prod (each
# promotion edits the tag's approval list and copies the image by digest into that environment's
# registry), then show the audit and every tag in every registry.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh
lab/labctl up >/dev/null
export PATH="$repo/.venv/bin:$PATH"
ansible-playbook -i inventories/lab playbooks/site.yml
lab/labctl push --namespace myproject --stream app --tag v1 --layers 5
for env in test uat prod; do
  ansible-playbook -i inventories/lab playbooks/promote.yml -e project=myproject -e image=app:v1 -e env="$env"
done
ansible-playbook -i inventories/lab playbooks/audit.yml -e project=myproject
lab/labctl where --namespace myproject
