#!/usr/bin/env bash
# Build the control plane and the registry cluster's node (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, kube-proxy, and kubectl for the lab's in-cluster client image, from the
# k8s.io/kubernetes Go module), etcd (from go.etcd.io/etcd/server/v3) and the registry of the lab's
# registry image (CNCF distribution, from github.com/distribution/distribution/v3) at the versions
# in versions.env, the node's container runtime (containerd v2, from
# github.com/containerd/containerd/v2) and the lab's S3-compatible object store (s3server: the
# small main in s3server/ over github.com/johannesboyne/gofakes3), once per machine; and this
# repository's registry token server (components/token-server) and promotion copier
# (components/copier), once per version of their sources.
# Output: $LAB_CACHE/bin/kubernetes-<k8s-version>/{kube-apiserver,...,kubectl},
#         $LAB_CACHE/bin/etcd-<etcd-version>/etcd, $LAB_CACHE/bin/distribution-<version>/registry,
#         $LAB_CACHE/bin/containerd-<version>/{containerd,containerd-shim-runc-v2,ctr},
#         $LAB_CACHE/bin/s3server-<gofakes3 version>-<hash of s3server/>/s3server
#         $LAB_CACHE/bin/token-server-<source hash>/token-server
#         and $LAB_CACHE/bin/copier-<source hash>/copier
# Binaries are cached outside the repository and never committed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
LAB_CACHE="${LAB_CACHE:-$HOME/.cache/segmented-registry-lab}"
k8s_out="$LAB_CACHE/bin/kubernetes-$LAB_KUBERNETES_VERSION"
etcd_out="$LAB_CACHE/bin/etcd-$LAB_ETCD_VERSION"
distribution_out="$LAB_CACHE/bin/distribution-$LAB_DISTRIBUTION_VERSION"
containerd_out="$LAB_CACHE/bin/containerd-$LAB_CONTAINERD_VERSION"
# The token server's version: the first 12 hex digits of a sha256 over its sources (go.mod and
# the .go files that are not tests, by path), so that a change of its code is a new build.
token_server_src="$(cd "$here/../.." && pwd)/components/token-server"
token_server_version="$(cd "$token_server_src" && find . -type f \( -name go.mod -o \( -name '*.go' ! -name '*_test.go' \) \) -print0 |
  LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)"
token_server_out="$LAB_CACHE/bin/token-server-$token_server_version"
# The copier's version, the same way; go.sum is part of it (its modules come from the Go module
# proxy: a changed dependency is a new build).
copier_src="$(cd "$here/../.." && pwd)/components/copier"
copier_version="$(cd "$copier_src" && find . -type f \( -name go.mod -o -name go.sum -o \( -name '*.go' ! -name '*_test.go' \) \) -print0 |
  LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)"
copier_out="$LAB_CACHE/bin/copier-$copier_version"
containerd_cmds=(containerd containerd-shim-runc-v2 ctr)
# s3server's own code is part of its version: a changed main.go is a new binary (and image tag)
s3server_src="$here/s3server"
s3server_version="$LAB_GOFAKES3_VERSION-$(sha256sum < "$s3server_src/main.go" | cut -c1-12)"
s3server_out="$LAB_CACHE/bin/s3server-$s3server_version"
k8s_cmds=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

build_kubernetes() {
  local missing=() cmd
  for cmd in "${k8s_cmds[@]}"; do [ -x "$k8s_out/$cmd" ] || missing+=("$cmd"); done
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "kubernetes $LAB_KUBERNETES_VERSION: cached in $k8s_out"; return
  fi
  local mod="$LAB_CACHE/src/kubernetes-$LAB_KUBERNETES_VERSION"
  mkdir -p "$mod" "$k8s_out"
  local v="${LAB_KUBERNETES_VERSION#v}"
  local major="${v%%.*}" rest="${v#*.}"; local minor="${rest%%.*}"
  local gomod
  gomod="$(cd "$mod" && go mod download -json "k8s.io/kubernetes@$LAB_KUBERNETES_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  # Wrapper module (kubernetes/kubernetes#79384): require k8s.io/kubernetes and point every staging
  # module its go.mod replaces with a local path at the published v0.N.P of the same release.
  {
    echo "module lab.local/kubernetes"
    echo
    echo "go $(awk '/^go /{print $2; exit}' "$gomod")"
    echo
    echo "require k8s.io/kubernetes $LAB_KUBERNETES_VERSION"
    echo
    echo "replace ("
    awk '/=> \.\/staging\/src\// {print $1}' "$gomod" | sort -u | while read -r m; do
      echo "	$m => $m v0.$minor.${rest#*.}"
    done
    echo ")"
  } > "$mod/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for cmd in "${k8s_cmds[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd"; done
    printf ')\n'
  } > "$mod/tools.go"
  (cd "$mod" && go mod tidy -e >/dev/null 2>&1 || true; cd "$mod" && go mod download)
  local ld=""
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$LAB_KUBERNETES_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    ld="$ld -X $p.gitTreeState=clean"
  done
  # one go build for every missing command: the packages they share are compiled once, the
  # commands are compiled and linked side by side (go build -p, one per core)
  echo "building ${missing[*]} $LAB_KUBERNETES_VERSION ..."
  local tmp="$k8s_out/.build" pkgs=()
  for cmd in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$cmd"); done
  rm -rf "$tmp"; mkdir -p "$tmp"
  (cd "$mod" && go build -mod=mod -tags selinux,notest,grpcnotrace -trimpath -ldflags "-s -w $ld" \
    -o "$tmp/" "${pkgs[@]}")
  for cmd in "${missing[@]}"; do mv "$tmp/$cmd" "$k8s_out/$cmd"; done
  rmdir "$tmp"
}

build_etcd() {
  if [ -x "$etcd_out/etcd" ]; then echo "etcd $LAB_ETCD_VERSION: cached in $etcd_out"; return; fi
  local mod="$LAB_CACHE/src/etcd-$LAB_ETCD_VERSION"
  mkdir -p "$mod" "$etcd_out"
  cat > "$mod/go.mod" <<GOMOD
module lab.local/etcd

go 1.24

require go.etcd.io/etcd/server/v3 $LAB_ETCD_VERSION
GOMOD
  cat > "$mod/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  (cd "$mod" && go mod tidy -e >/dev/null 2>&1 || true)
  echo "building etcd $LAB_ETCD_VERSION ..."
  (cd "$mod" && go build -mod=mod -trimpath -ldflags "-s -w" -o "$etcd_out/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$etcd_out/etcd.tmp" "$etcd_out/etcd"
}

build_distribution() {
  if [ -x "$distribution_out/registry" ]; then
    echo "distribution $LAB_DISTRIBUTION_VERSION: cached in $distribution_out"; return
  fi
  local mod="$LAB_CACHE/src/distribution-$LAB_DISTRIBUTION_VERSION"
  mkdir -p "$mod" "$distribution_out"
  cat > "$mod/go.mod" <<GOMOD
module lab.local/distribution

go 1.24

require github.com/distribution/distribution/v3 $LAB_DISTRIBUTION_VERSION
GOMOD
  cat > "$mod/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/distribution/distribution/v3/cmd/registry"
GO
  (cd "$mod" && go mod tidy -e >/dev/null 2>&1 || true)
  echo "building distribution $LAB_DISTRIBUTION_VERSION ..."
  # a static binary (CGO_ENABLED=0, exported above): the image it goes into has nothing else
  (cd "$mod" && go build -mod=mod -trimpath \
    -ldflags "-s -w -X github.com/distribution/distribution/v3/version.version=$LAB_DISTRIBUTION_VERSION" \
    -o "$distribution_out/registry.tmp" github.com/distribution/distribution/v3/cmd/registry)
  mv "$distribution_out/registry.tmp" "$distribution_out/registry"
}

build_containerd() {
  local missing=() cmd
  for cmd in "${containerd_cmds[@]}"; do [ -x "$containerd_out/$cmd" ] || missing+=("$cmd"); done
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "containerd $LAB_CONTAINERD_VERSION: cached in $containerd_out"; return
  fi
  local mod="$LAB_CACHE/src/containerd-$LAB_CONTAINERD_VERSION"
  mkdir -p "$mod" "$containerd_out"
  cat > "$mod/go.mod" <<GOMOD
module lab.local/containerd

go 1.24

require github.com/containerd/containerd/v2 $LAB_CONTAINERD_VERSION
GOMOD
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for cmd in "${containerd_cmds[@]}"; do printf '\t_ "github.com/containerd/containerd/v2/cmd/%s"\n' "$cmd"; done
    printf ')\n'
  } > "$mod/tools.go"
  (cd "$mod" && go mod tidy -e >/dev/null 2>&1 || true)
  echo "building ${missing[*]} $LAB_CONTAINERD_VERSION ..."
  local tmp="$containerd_out/.build" pkgs=()
  for cmd in "${missing[@]}"; do pkgs+=("github.com/containerd/containerd/v2/cmd/$cmd"); done
  rm -rf "$tmp"; mkdir -p "$tmp"
  # static (CGO_ENABLED=0): without the btrfs, devmapper and zfs snapshotters, which need cgo
  (cd "$mod" && go build -mod=mod -tags no_btrfs,no_devmapper,no_zfs -trimpath \
    -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$LAB_CONTAINERD_VERSION" \
    -o "$tmp/" "${pkgs[@]}")
  for cmd in "${missing[@]}"; do mv "$tmp/$cmd" "$containerd_out/$cmd"; done
  rmdir "$tmp"
}

build_token_server() {
  if [ -x "$token_server_out/token-server" ]; then
    echo "token-server $token_server_version: cached in $token_server_out"; return
  fi
  mkdir -p "$token_server_out"
  echo "building token-server $token_server_version ..."
  # static (CGO_ENABLED=0): its image holds this one file
  (cd "$token_server_src" && go build -trimpath -ldflags "-s -w" -o "$token_server_out/token-server.tmp" .)
  mv "$token_server_out/token-server.tmp" "$token_server_out/token-server"
}

build_copier() {
  if [ -x "$copier_out/copier" ]; then
    echo "copier $copier_version: cached in $copier_out"; return
  fi
  mkdir -p "$copier_out"
  echo "building copier $copier_version ..."
  # static (CGO_ENABLED=0): its image holds this one file. Its modules (go.sum) are downloaded
  # through the Go module proxy into the module cache when they are not there yet.
  (cd "$copier_src" && go build -mod=readonly -trimpath -ldflags "-s -w" -o "$copier_out/copier.tmp" .)
  mv "$copier_out/copier.tmp" "$copier_out/copier"
}

build_s3server() {
  if [ -x "$s3server_out/s3server" ]; then echo "s3server $s3server_version: cached in $s3server_out"; return; fi
  local mod="$LAB_CACHE/src/s3server-$s3server_version"
  mkdir -p "$mod" "$s3server_out"
  cat > "$mod/go.mod" <<GOMOD
module lab.local/s3server

go 1.24

require (
	github.com/johannesboyne/gofakes3 $LAB_GOFAKES3_VERSION
	go.etcd.io/bbolt $LAB_BBOLT_VERSION
)
GOMOD
  cp "$s3server_src/main.go" "$mod/main.go"
  (cd "$mod" && go mod tidy -e >/dev/null 2>&1 || true)
  echo "building s3server $s3server_version ..."
  (cd "$mod" && go build -mod=mod -trimpath -ldflags "-s -w" -o "$s3server_out/s3server.tmp" .)
  mv "$s3server_out/s3server.tmp" "$s3server_out/s3server"
}

case "${1:-all}" in
  kubernetes) build_kubernetes ;;
  etcd) build_etcd ;;
  distribution) build_distribution ;;
  containerd) build_containerd ;;
  token-server) build_token_server ;;
  copier) build_copier ;;
  s3server) build_s3server ;;
  all) build_etcd; build_kubernetes; build_distribution; build_containerd; build_token_server; build_copier; build_s3server ;;
  paths) echo "$k8s_out $etcd_out $distribution_out $containerd_out $token_server_out $s3server_out $copier_out" ;;
  token-server-version) echo "$token_server_version" ;;
  copier-version) echo "$copier_version" ;;
  *) echo "usage: $0 [all|kubernetes|etcd|distribution|containerd|token-server|copier|s3server|paths|token-server-version|copier-version]" >&2; exit 2 ;;
esac
