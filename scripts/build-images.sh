#!/usr/bin/env bash
# Builds the local step image `executor-busybox:latest` (FROM scratch + Debian's busybox-static).
# Idempotent: skips the build when the image already exists unless FORCE=1.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
if [[ "${FORCE:-0}" != 1 ]] && docker image inspect executor-busybox:latest >/dev/null 2>&1; then
  exit 0
fi
if [[ ! -x /bin/busybox ]]; then
  apt-get install -y -q busybox-static >/dev/null
fi
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$here/docker/busybox/Dockerfile" "$ctx/"
cp /bin/busybox "$ctx/busybox"
docker build -q -t executor-busybox:latest "$ctx" >/dev/null
echo "built executor-busybox:latest"
