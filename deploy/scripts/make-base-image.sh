#!/usr/bin/env bash
# Build the Debian bookworm base image that the Dockerfile builds on, without a registry.
#
# No registry is reachable from CI, so `FROM debian:bookworm-slim` cannot be pulled. Instead we
# debootstrap a minbase root from the apt mirror this machine already uses, keep it as a tarball
# (also used by .ci/deploy.sh as a fresh root for the deb install test), and `docker import` it.
#
# Both steps are cached: the tarball is reused if present, the image is skipped if it exists.
#
# With --systemd it builds the root that tests/deploy/test_systemd_boot.py boots with systemd as
# PID 1 instead: minbase plus systemd, and the deb's dependencies preinstalled (python3.11, git)
# so the test's `apt install ./x.deb` needs no download; a persistent journal, so the journal of
# a container that powered itself off can be read after `docker start`.
#
# Usage: make-base-image.sh [--systemd] [image-tag]
# Env:   EXECUTOR_DEPLOY_CACHE  cache dir (default /var/cache/executor-deploy)
#        DEBIAN_MIRROR          override the mirror (default: read from /etc/apt/sources.list*)
#        BASE_TARBALL_ONLY=1    build the tarball only, no docker import
set -euo pipefail

flavour=minbase include="" default_tag=executor-base:bookworm
changes=(--change 'CMD ["/bin/bash"]')
if [[ "${1:-}" == --systemd ]]; then
  shift
  flavour=systemd default_tag=executor-systemd:bookworm
  include=systemd,systemd-sysv,python3.11,git,ca-certificates
  # (docker import takes no STOPSIGNAL: the test runs it with --stop-signal SIGRTMIN+3.)
  changes=(--change 'CMD ["/lib/systemd/systemd"]')
fi
tag="${1:-${default_tag}}"
cache="${EXECUTOR_DEPLOY_CACHE:-/var/cache/executor-deploy}"
tarball="${cache}/bookworm-${flavour}.tar"
recipe=""
if [[ "${flavour}" == systemd ]]; then
  # A changed recipe (this script) builds a new root and image instead of reusing a stale one.
  recipe="$(sha256sum "$0" | cut -c1-12)"
  tarball="${cache}/bookworm-${flavour}-${recipe}.tar"
  changes+=(--change "LABEL executor.recipe=${recipe}")
fi
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
  debootstrap --variant=minbase ${include:+--include="${include}"} "${suite}" "${root}" "${mirror}" \
    >"${cache}/debootstrap-${flavour}.log" 2>&1 || {
    tail -n 30 "${cache}/debootstrap-${flavour}.log" >&2
    exit 1
  }
  if [[ "${flavour}" == systemd ]]; then
    mkdir -p "${root}/var/log/journal"
    # Units that need a real machine (consoles, udev, kernel file systems docker already set up).
    for unit in getty.target console-getty.service systemd-udevd.service systemd-udev-trigger.service \
      systemd-remount-fs.service dev-hugepages.mount sys-fs-fuse-connections.mount \
      sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
      systemd-firstboot.service systemd-modules-load.service; do
      ln -sf /dev/null "${root}/etc/systemd/system/${unit}"
    done
    : >"${root}/etc/machine-id"
    # The docker CLI alone (the test mounts the host's engine socket), as the Dockerfile takes it.
    chroot "${root}" sh -ec 'cd /tmp && apt-get -q -o APT::Sandbox::User=root update \
      && apt-get -q -o APT::Sandbox::User=root download docker.io \
      && dpkg-deb --fsys-tarfile docker.io_*.deb | tar -x ./usr/bin/docker \
      && install -m 0755 usr/bin/docker /usr/bin/docker && rm -rf /tmp/usr /tmp/docker.io_*.deb' \
      >>"${cache}/debootstrap-${flavour}.log" 2>&1
  fi
  # Trim what a container never needs; keep apt lists empty like the official slim image.
  rm -rf "${root}"/var/cache/apt/archives/*.deb "${root}"/var/lib/apt/lists/*
  [[ -z "${recipe}" ]] || rm -f "${cache}/bookworm-${flavour}"-*.tar # older recipes' roots
  tar -C "${root}" --numeric-owner -cf "${tarball}.tmp" .
  mv "${tarball}.tmp" "${tarball}"
fi

if [[ "${BASE_TARBALL_ONLY:-0}" == 1 ]]; then
  echo "${tarball}"
  exit 0
fi

if have="$(docker image inspect -f '{{with .Config.Labels}}{{index . "executor.recipe"}}{{end}}' \
  "${tag}" 2>/dev/null)" && [[ "${have}" == "${recipe}" ]]; then
  echo "make-base-image: ${tag} exists, skipping import" >&2
else
  old_id="$(docker image inspect -f '{{.Id}}' "${tag}" 2>/dev/null || true)"
  docker import "${changes[@]}" "${tarball}" "${tag}" >/dev/null
  [[ -z "${old_id}" ]] || docker rmi "${old_id}" >/dev/null 2>&1 || true # a stale recipe's
  echo "make-base-image: imported ${tag}" >&2
fi
echo "${tarball}"
