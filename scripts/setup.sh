#!/usr/bin/env bash
# Set up a fresh machine for the lab and the tests; every step is skipped when already done.
#   - Debian packages: docker-registry (CNCF distribution), skopeo, haproxy (the lab's router),
#     shellcheck (ansible-test sanity); for the registry cluster's node: runc,
#     containernetworking-plugins (CNI), busybox-static (the lab's busybox and pause images),
#     iptables (kube-proxy); openjdk-17-jre-headless (ansible-rulebook's rule engine, Drools, needs
#     Java 17: tests/integration/test_event_source.py)
#   - .venv with tests/requirements.txt (ansible 12 brings kubernetes.core; no Galaxy needed)
#   - .venv/collections: this checkout seen as the collection segmented.registry (ansible.cfg)
#   - .venv-oldest: the oldest ansible-core the collection supports (requires_ansible in
#     meta/runtime.yml, latest patch) with ../requirements.txt, no ansible package: its
#     collections (kubernetes.core, community.crypto) are .venv's (tests/integration/test_oldest_ansible.py)
#   - etcd, the Kubernetes components, the distribution registry and containerd built from their
#     Go modules (cached by version)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

missing=()
for pkg in docker-registry skopeo haproxy shellcheck runc containernetworking-plugins busybox-static iptables openjdk-17-jre-headless; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "setup: Go (1.26) is needed to build the lab's control plane" >&2; exit 1; }

stamp=".venv/.requirements.sha256"
want="$(cat requirements.txt tests/requirements.txt | sha256sum | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r tests/requirements.txt
  echo "$want" > "$stamp"
fi
# The floor of meta/runtime.yml (">=2.17.0" -> 2.17): its latest patch release.
oldest="$(sed -n 's/^requires_ansible: *">=\([0-9]*\.[0-9]*\)\(\.[0-9]*\)\?".*/\1/p' meta/runtime.yml)"
[ -n "$oldest" ] || { echo "setup: no requires_ansible: \">=X.Y[.Z]\" in meta/runtime.yml" >&2; exit 1; }
stamp=".venv-oldest/.requirements.sha256"
want="$( (echo "ansible-core==$oldest.*"; cat requirements.txt) | sha256sum | cut -d' ' -f1)"
if [ ! -x .venv-oldest/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating .venv-oldest (ansible-core $oldest)"
  python3 -m venv --clear .venv-oldest
  .venv-oldest/bin/pip install -q "ansible-core==$oldest.*" -r requirements.txt
  echo "$want" > "$stamp"
fi
mkdir -p .venv/collections/ansible_collections/segmented
ln -sfn ../../../.. .venv/collections/ansible_collections/segmented/registry

bash lab/build/build-binaries.sh all
