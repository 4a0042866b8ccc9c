#!/usr/bin/env bash
# Run `ansible-test sanity` on the collection, offline from Galaxy.
#
# ansible-test wants the collection at .../ansible_collections/<namespace>/<name>/ inside a git
# checkout, with the collections it depends on beside it. So this script:
#   1. copies the collection's files (git-tracked and untracked-but-not-ignored, minus the
#      folders galaxy.yml's build_ignore keeps out of the artifact and that are not Ansible
#      content: lab/, components/ (Go sources, built into images), scripts/, .ci/) into
#      a temporary ansible_collections/segmented/registry and makes that a git repository;
#   2. puts kubernetes.core (from the ansible package's site-packages) beside it;
#   3. seeds ~/.ansible/test/cache/get_pip_<version>.py: ansible-test bootstraps pip in each
#      test's virtual environment by downloading get-pip.py from a host that is not reachable
#      here; the stand-in uses ensurepip, then installs the requested pip from PyPI;
#   4. runs ansible-test sanity (each test installs its own requirements from PyPI).
#
# Usage: tests/sanity/run-sanity.sh [extra ansible-test arguments, e.g. --test validate-modules]
# Environment: PYTHON_VERSION (default 3.11), VENV (default <repo>/.venv), KEEP=1 keeps the copy.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${VENV:-$repo/.venv}"
python_version="${PYTHON_VERSION:-3.11}"
ansible_test="$venv/bin/ansible-test"
python="$venv/bin/python"
[ -x "$ansible_test" ] || { echo "run-sanity: $ansible_test not found (pip install -r tests/requirements.txt)" >&2; exit 2; }

start=$(date +%s)
work="$(mktemp -d "${TMPDIR:-/tmp}/segmented-registry-sanity.XXXXXX")"
if [ "${KEEP:-0}" != "1" ]; then
  trap 'rm -rf "$work"' EXIT
fi
dest="$work/ansible_collections/segmented/registry"
mkdir -p "$dest"

# 1. The collection's files (what git would commit), without the folders kept out of the artifact.
(cd "$repo" && git ls-files -co --exclude-standard -z) |
  while IFS= read -r -d '' file; do
    case "$file" in
      lab/*|components/*|scripts/*|.ci/*|.venv/*) continue ;;
    esac
    [ -e "$repo/$file" ] || [ -L "$repo/$file" ] || continue  # deleted but still tracked
    mkdir -p "$dest/$(dirname "$file")"
    cp -P "$repo/$file" "$dest/$file"
  done
(
  cd "$dest"
  git init -q
  git add -A
  git -c user.name=sanity -c user.email=sanity@localhost -c commit.gpgsign=false commit -q -m "sanity snapshot"
)

# 2. Dependencies beside the collection (no Galaxy: the ansible package carries them).
site="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
dependencies=(kubernetes/core)  # galaxy.yml's dependencies
for dependency in "${dependencies[@]}"; do
  mkdir -p "$work/ansible_collections/$(dirname "$dependency")"
  cp -r "$site/ansible_collections/$dependency" "$work/ansible_collections/$dependency"
done

# 3. The pip bootstrap stand-in, for every pip version this ansible-test may ask for.
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
pip_versions="$("$python" - <<'PY'
import re, ansible_test, os
path = os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")
print(" ".join(sorted(set(re.findall(r"pip='([0-9.]+)'", open(path).read())))))
PY
)"
for version in $pip_versions; do
  target="$cache/get_pip_${version//./_}.py"
  [ -f "$target" ] && grep -q "segmented-registry stand-in" "$target" && continue
  [ -f "$target" ] && continue  # a real get-pip.py someone placed there: keep it
  cat > "$target" <<'PY'
# segmented-registry stand-in for get-pip.py (ansible-test downloads the real one from a host
# that is not reachable here): bootstrap pip with ensurepip, then install what was asked for
# (for instance pip==24.2) from the package index.
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"], stdout=subprocess.DEVNULL)
requested = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
if [arg for arg in requested if not arg.startswith("-")]:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet"] + requested)
PY
done

# 4. Run it.
status=0
(
  cd "$dest"
  "$ansible_test" sanity --python "$python_version" --color no "$@"
) || status=$?
end=$(date +%s)
echo "run-sanity: ansible-test sanity exited $status after $((end - start)) s"
if [ "${KEEP:-0}" = "1" ]; then
  echo "run-sanity: copy kept in $dest"
fi
exit $status
