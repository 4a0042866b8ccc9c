#!/usr/bin/env bash
# The main job on the local lab: set up, bring the lab up, run the site playbook (inventory
# validation; roles/registry_cluster: the environment registries and their token server as pods on
# the registry cluster; roles/credentials: each consumer's pull credential; roles/consumer_cluster:
# one logical registry name on every consumer cluster, each confined to its environment's registry;
# then reconcile.yml: the environment registries brought in line with the approval lists),
# push an image the way a build does, promote it test -> uat -> prod (each promotion edits the tag's
# approval list and copies the image by digest into that environment's registry), then show the
# audit, every tag in every registry, and what registry.apps.lab.local/myproject/app:v1 resolves
# to on each consumer cluster (pulled as its nodes pull: labctl pull).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh
lab/labctl up >/dev/null
inventory="$(lab/labctl inventory)"  # inventories/lab, or the one labctl up --consumers N wrote
export PATH="$repo/.venv/bin:$PATH"
ansible-playbook -i "$inventory" playbooks/site.yml
lab/labctl push --namespace myproject --stream app --tag v1 --layers 5
for env in test uat prod; do
  ansible-playbook -i "$inventory" playbooks/promote.yml -e project=myproject -e image=app:v1 -e env="$env"
done
ansible-playbook -i "$inventory" playbooks/audit.yml -e project=myproject
lab/labctl where --namespace myproject
for cluster in test uat prod; do
  lab/labctl pull --cluster "$cluster" registry.apps.lab.local/myproject/app:v1
done
