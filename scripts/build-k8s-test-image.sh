#!/usr/bin/env bash
# Builds `executor-k8s-git:latest`, the image the Kubernetes tests run `setup-workspace` in
# (KUBERNETES_SINGLE_JOB_STEP_IMAGE needs sh and git): Debian bookworm minbase plus git and
# ca-certificates, debootstrapped from the apt mirror this machine uses and `docker import`ed
# (nothing can be pulled). The root is cached as a tarball; the image is skipped when present
# unless FORCE=1. Production uses the project's helper image instead (docs/kubernetes.md).
#
# Env: EXECUTOR_DEPLOY_CACHE (default /var/cache/executor-deploy), DEBIAN_MIRROR.
set -euo pipefail
tag=executor-k8s-git:latest
if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$tag" >/dev/null 2>&1; then
  exit 0
fi
cache="${EXECUTOR_DEPLOY_CACHE:-/var/cache/executor-deploy}"
tarball="$cache/bookworm-k8s-git.tar"
mkdir -p "$cache"
if [[ ! -s "$tarball" ]]; then
  mirror="${DEBIAN_MIRROR:-}"
  if [[ -z "$mirror" ]]; then
    # The first Debian mirror apt uses (deb822 `URIs:` or one-line `deb` entries).
    mirror="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
      | awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' | grep -E '/debian/?$' | head -n1 || true)"
    if [[ -z "$mirror" ]]; then
      mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; break}}' \
        | grep -E '/debian/?$' | head -n1 || true)"
    fi
    mirror="${mirror:-http://deb.debian.org/debian}"
  fi
  command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >/dev/null
  root="$(mktemp -d "$cache/k8s-git-root.XXXXXX")"
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase --include=git,ca-certificates bookworm "$root" "$mirror" \
    >"$cache/debootstrap-k8s-git.log" 2>&1 || {
    tail -n 30 "$cache/debootstrap-k8s-git.log" >&2
    exit 1
  }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi
docker import --change 'CMD ["/bin/sh"]' "$tarball" "$tag" >/dev/null
echo "built $tag"
