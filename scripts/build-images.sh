#!/usr/bin/env bash
# Builds the local images (FROM scratch + Debian's busybox-static; no registry is reachable):
# - `executor-busybox:latest`, the step image of tests, benchmarks and sample jobs;
# - codeintel STAND-INS, named as such: `executor-indexer-standin:latest` (for an indexer
#   image) and `executor-src-cli-standin:latest` (for sourcegraph/src-cli's upload).
# Idempotent: skips an image that already exists unless FORCE=1.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
if [[ ! -x /bin/busybox ]]; then
  apt-get install -y -q busybox-static >/dev/null
fi
build() { # image, directory under docker/
  local image="$1" dir="$2" ctx
  if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "${image}" >/dev/null 2>&1; then
    return 0
  fi
  ctx="$(mktemp -d)"
  cp -R "${here}/docker/${dir}/." "${ctx}/"
  cp /bin/busybox "${ctx}/busybox"
  docker build -q -t "${image}" "${ctx}" >/dev/null
  rm -rf "${ctx}"
  echo "built ${image}"
}
build executor-busybox:latest busybox
build executor-indexer-standin:latest indexer-standin
build executor-src-cli-standin:latest src-cli-standin
