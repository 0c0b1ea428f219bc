#!/usr/bin/env bash
# Build the project's image (the Dockerfile at the repository root) into the local Docker engine,
# offline, the way .ci/deploy.sh does: on the debootstrap base (make-base-image.sh, cached) with
# wheels collected on the host and installed with --no-index.
#
# Cached: the image carries a label with a hash of everything the build reads (the Dockerfile,
# pyproject.toml, README.md, executor/, deploy/docker/healthcheck.py) and is also tagged
# `<repository>:src-<hash>`; when the tag already has the same hash nothing is built, and when an
# image of that hash exists (built from another checkout) it is only retagged. Prints the image
# reference.
#
# Used by the in-cluster test of the Helm chart (tests/k8s/test_helm_install.py): the test
# cluster's kubelet takes images from this engine.
#
# Usage: build-executor-image.sh [image-tag]    (default sourcegraph-executor-py:dev)
# Env:   PIP (default: the repository's .venv/bin/pip, else pip), EXECUTOR_DEPLOY_CACHE,
#        BUILD_NETWORK (docker build --network, e.g. host when the engine's bridge is unusable;
#        the RUN steps need only the apt mirror, pip installs from the collected wheels)
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "${repo}"
tag="${1:-sourcegraph-executor-py:dev}"
pip="${PIP:-}"
if [[ -z "${pip}" ]]; then
  if [[ -x .venv/bin/pip ]]; then pip=.venv/bin/pip; else pip=pip; fi
fi

source_hash="$(
  find Dockerfile pyproject.toml README.md executor deploy/docker/healthcheck.py -type f \
    -not -path '*/__pycache__/*' -not -name '*.pyc' -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
)"
have="$(docker image inspect -f '{{with .Config.Labels}}{{index . "executor.source"}}{{end}}' \
  "${tag}" 2>/dev/null || true)"
if [[ "${have}" == "${source_hash}" ]]; then
  echo "${tag}"
  exit 0
fi
by_source="${tag%:*}:src-${source_hash}"
if docker image inspect "${by_source}" >/dev/null 2>&1; then
  docker tag "${by_source}" "${tag}"
  echo "${tag}"
  exit 0
fi

base=executor-base:bookworm
bash deploy/scripts/make-base-image.sh "${base}" >/dev/null
wheels=deploy/docker/wheels
rm -f "${wheels}"/sourcegraph_executor_py-*.whl
echo "build-executor-image: collecting wheels" >&2
pip_log="$(mktemp)"
trap 'rm -f "${pip_log}"' EXIT
"${pip}" wheel --quiet --disable-pip-version-check --wheel-dir "${wheels}" . "setuptools>=68" wheel \
  2>"${pip_log}" || { cat "${pip_log}" >&2; exit 1; }
echo "build-executor-image: building ${tag} (${source_hash})" >&2
DOCKER_BUILDKIT=0 docker build --quiet ${BUILD_NETWORK:+--network "${BUILD_NETWORK}"} --build-arg BASE_IMAGE="${base}" --build-arg PIP_NO_INDEX=1 \
  --label "executor.source=${source_hash}" -t "${tag}" -t "${by_source}" . >/dev/null
echo "${tag}"
