#!/usr/bin/env bash
# Build the Debian bookworm base image that the Dockerfile builds on, without a registry.
#
# No registry is reachable from CI, so `FROM debian:bookworm-slim` cannot be pulled. Instead we
# debootstrap a minbase root from the apt mirror this machine already uses, keep it as a tarball
# (also used by .ci/deploy.sh as a fresh root for the deb install test), and `docker import` it.
#
# Both steps are cached: the tarball is reused if present, the image is skipped if it exists.
#
# Usage: make-base-image.sh [image-tag]
# Env:   EXECUTOR_DEPLOY_CACHE  cache dir (default /var/cache/executor-deploy)
#        DEBIAN_MIRROR          override the mirror (default: read from /etc/apt/sources.list*)
#        BASE_TARBALL_ONLY=1    build the tarball only, no docker import
set -euo pipefail

tag="${1:-executor-base:bookworm}"
cache="${EXECUTOR_DEPLOY_CACHE:-/var/cache/executor-deploy}"
tarball="${cache}/bookworm-minbase.tar"
suite=bookworm

# The first Debian (not -security) mirror configured for apt, in deb822 or one-line format.
detect_mirror() {
  local uri
  uri="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' \
    | grep -E '/debian/?$' | head -n1 || true)"
  if [[ -z "${uri}" ]]; then
    uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; break}}' \
      | grep -E '/debian/?$' | head -n1 || true)"
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

mkdir -p "${cache}"
if [[ ! -s "${tarball}" ]]; then
  mirror="${DEBIAN_MIRROR:-$(detect_mirror)}"
  command -v debootstrap >/dev/null || {
    echo "make-base-image: debootstrap is not installed (apt-get install debootstrap)" >&2
    exit 1
  }
  root="$(mktemp -d "${cache}/root.XXXXXX")"
  trap 'rm -rf "${root}"' EXIT
  echo "make-base-image: debootstrap ${suite} from ${mirror}" >&2
  debootstrap --variant=minbase "${suite}" "${root}" "${mirror}" >"${cache}/debootstrap.log" 2>&1 || {
    tail -n 30 "${cache}/debootstrap.log" >&2
    exit 1
  }
  # Trim what a container never needs; keep apt lists empty like the official slim image.
  rm -rf "${root}"/var/cache/apt/archives/*.deb "${root}"/var/lib/apt/lists/*
  tar -C "${root}" --numeric-owner -cf "${tarball}.tmp" .
  mv "${tarball}.tmp" "${tarball}"
fi

if [[ "${BASE_TARBALL_ONLY:-0}" == 1 ]]; then
  echo "${tarball}"
  exit 0
fi

if docker image inspect "${tag}" >/dev/null 2>&1; then
  echo "make-base-image: ${tag} exists, skipping import" >&2
else
  docker import --change 'CMD ["/bin/bash"]' "${tarball}" "${tag}" >/dev/null
  echo "make-base-image: imported ${tag}" >&2
fi
echo "${tarball}"
