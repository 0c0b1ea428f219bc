#!/usr/bin/env bash
# Builds the local images, nothing is ever pulled:
# - `executor-busybox:latest`, the step image of tests, benchmarks and sample jobs (FROM scratch +
#   Debian's busybox-static);
# - codeintel STAND-INS, named as such: `executor-indexer-standin:latest` (for an indexer
#   image) and `executor-src-cli-standin:latest` (for sourcegraph/src-cli's upload);
# - `executor-batcheshelper:latest`, the batch helper image (docker/batcheshelper/Dockerfile):
#   the project's own code on the project's debootstrap base (`executor-base:bookworm`, made by
#   deploy/scripts/make-base-image.sh when missing), with git and sh. It runs the `.pre`/`.post`
#   steps of V2 batches jobs and is the Kubernetes `setup-workspace` image.
# Idempotent: the busybox images are skipped when they exist, the helper image when its label
# `executor.recipe` matches a hash of its inputs (Dockerfile, pyproject.toml, executor/**.py);
# FORCE=1 rebuilds all. The dependency wheels are downloaded once per dependency list into
# $EXECUTOR_DEPLOY_CACHE (default /var/cache/executor-deploy) with the host's pip (containers
# cannot reach PyPI here), and the layers are ordered so a code change rebuilds only the last.
# SKIP_HELPER_IMAGE=1 builds the busybox images only.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
tmpdirs=()
trap 'rm -rf "${tmpdirs[@]}"' EXIT

if [[ ! -x /bin/busybox ]]; then
  apt-get install -y -q busybox-static >/dev/null
fi
build() { # image, directory under docker/
  local image="$1" dir="$2" ctx recipe stamp
  # Rebuilt whenever its directory or the busybox binary changed, so an engine that kept an
  # older image of the same tag never runs stale test images. The hash is a second tag, not a
  # LABEL: image labels show up on every container made from the image (tests compare those).
  recipe="$(cd "${here}/docker/${dir}" && find . -type f -print0 | sort -z | xargs -0 sha256sum \
    | cat - /bin/busybox | sha256sum | cut -c1-16)"
  stamp="${image%:*}:recipe-${recipe}"
  if [[ "${FORCE:-0}" != 1 ]] && [[ -n "$(docker image inspect -f '{{.Id}}' "${stamp}" 2>/dev/null)" ]] \
      && [[ "$(docker image inspect -f '{{.Id}}' "${stamp}")" == \
            "$(docker image inspect -f '{{.Id}}' "${image}" 2>/dev/null)" ]]; then
    return 0
  fi
  ctx="$(mktemp -d)"
  cp -R "${here}/docker/${dir}/." "${ctx}/"
  cp /bin/busybox "${ctx}/busybox"
  docker build -q -t "${image}" -t "${stamp}" "${ctx}" >/dev/null
  rm -rf "${ctx}"
  # Untag older recipe stamps of this image (the image itself is shared or already replaced).
  docker images --format '{{.Repository}}:{{.Tag}}' "${image%:*}" | grep ':recipe-' \
    | grep -vx "${stamp}" | xargs -r docker rmi >/dev/null 2>&1 || true
  echo "built ${image}"
}
build executor-busybox:latest busybox
build executor-indexer-standin:latest indexer-standin
build executor-src-cli-standin:latest src-cli-standin

[[ "${SKIP_HELPER_IMAGE:-0}" == 1 ]] && exit 0
helper="${EXECUTOR_BATCHESHELPER_IMAGE:-executor-batcheshelper:latest}"
base="${EXECUTOR_BASE_IMAGE:-executor-base:bookworm}"
recipe="$(cd "$here" && { cat docker/batcheshelper/Dockerfile pyproject.toml README.md
  find executor -name '*.py' -print0 | LC_ALL=C sort -z | xargs -0 cat; } | sha256sum | cut -c1-16)"
have="$(docker image inspect -f '{{index .Config.Labels "executor.recipe"}}' "$helper" 2>/dev/null || true)"
if [[ "${FORCE:-0}" != 1 && "$have" == "$recipe" ]]; then
  exit 0
fi
if ! docker image inspect "$base" >/dev/null 2>&1; then
  bash "$here/deploy/scripts/make-base-image.sh" "$base" >/dev/null
fi
cache="${EXECUTOR_DEPLOY_CACHE:-/var/cache/executor-deploy}"
requirements="$(python3 -c 'import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' "$here/pyproject.toml")"
wheels="$cache/batcheshelper-wheels-$(sha256sum <<<"$requirements" | cut -c1-12)"
if [[ ! -s "$wheels/.complete" ]]; then
  pip="${PIP:-$here/.venv/bin/pip}"
  [[ -x "$pip" ]] || pip="python3 -m pip"
  mkdir -p "$cache"
  rm -rf "$wheels.tmp"
  # shellcheck disable=SC2086 # "python3 -m pip" is meant to split
  $pip wheel --quiet --disable-pip-version-check --wheel-dir "$wheels.tmp" -r /dev/stdin <<<"$requirements"
  printf '%s\n' "$requirements" >"$wheels.tmp/.complete"
  rm -rf "$wheels"
  mv "$wheels.tmp" "$wheels"
fi
ctx="$(mktemp -d)"
tmpdirs+=("$ctx")
cp "$here/docker/batcheshelper/Dockerfile" "$ctx/"
cp -r "$wheels" "$ctx/wheels"
rm -f "$ctx/wheels/.complete"
(cd "$here" && find executor -name '*.py' -print0 | xargs -0 cp --parents -t "$ctx")
find "$here/executor" -name py.typed -printf 'executor/%P\0' | (cd "$here" && xargs -0 -r cp --parents -t "$ctx")
# The legacy builder (no buildx plugin here); its output only on failure.
if ! out="$(DOCKER_BUILDKIT=0 docker build -q --build-arg BASE_IMAGE="$base" \
  --label executor.recipe="$recipe" -t "$helper" "$ctx" 2>&1)"; then
  echo "$out" >&2
  exit 1
fi
echo "built $helper"
