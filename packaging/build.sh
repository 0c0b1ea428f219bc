#!/usr/bin/env bash
# Build the sourcegraph-executor-py deb and rpm into dist/.
#
# Route: the venv is built by the Dockerfile's `venv` stage, i.e. *at its final path*
# /opt/executor inside a Debian bookworm root with the distribution's /usr/bin/python3.11,
# then copied out and packaged as a tree. Why not a venv built on the build host and moved,
# or `pip install --target` plus a launcher: a venv hard-codes its path in pyvenv.cfg and in
# every console-script shebang, so building it anywhere but /opt/executor means rewriting
# files; --target loses the console scripts and needs PYTHONPATH plumbing in a launcher.
# Building in place needs no fix-ups, and the image and the packages run the same tree.
# The venv links to /usr/bin/python3.11, which Debian 12 and RHEL 9 (python3.11 package) both
# provide; the packages depend on python3.11 accordingly.
#
# Wheels are collected on the host first (host pip has the index access) and the image build
# installs them with --no-index, so the container build itself needs only the apt mirror.
#
# Env: BASE_IMAGE (default executor-base:bookworm, see deploy/scripts/make-base-image.sh),
#      NFPM (default: nfpm on PATH), PIP (default: pip on PATH), DIST (default dist).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "${repo}"
base_image="${BASE_IMAGE:-executor-base:bookworm}"
nfpm="${NFPM:-nfpm}"
pip="${PIP:-pip}"
dist="${DIST:-dist}"
build=build

VERSION="$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
ARCH=amd64
export VERSION ARCH

log() { echo "packaging/build.sh: $*" >&2; }

# 1. Wheels for an offline image build (the project's own wheel is rebuilt every time).
wheels=deploy/docker/wheels
rm -f "${wheels}"/sourcegraph_executor_py-*.whl
log "collecting wheels"
"${pip}" wheel --quiet --disable-pip-version-check --wheel-dir "${wheels}" . "setuptools>=68" wheel

# 2. The venv stage (shares its layers with the full image build).
log "building the venv stage on ${base_image}"
DOCKER_BUILDKIT=0 docker build --quiet --target venv --build-arg BASE_IMAGE="${base_image}" \
  --build-arg PIP_NO_INDEX=1 -t "executor-venv:${VERSION}" . >/dev/null

# 3. Copy /opt/executor out.
rm -rf "${build}/pkgroot" "${build}/pkgdoc" "${build}/pkgscripts"
mkdir -p "${build}/pkgroot/opt" "${build}/pkgdoc" "${build}/pkgscripts/deb" "${build}/pkgscripts/rpm"
cid="$(docker create "executor-venv:${VERSION}" /bin/true)"
trap 'docker rm -f "${cid}" >/dev/null 2>&1 || true' EXIT
docker cp "${cid}:/opt/executor" "${build}/pkgroot/opt/executor"
docker rm -f "${cid}" >/dev/null
trap - EXIT
# Bytecode is compiled by the postinst (and removed by the prerm) like Debian's py3compile does,
# so no __pycache__ is shipped; extension modules are stripped of debug symbols.
find "${build}/pkgroot" -name __pycache__ -type d -prune -exec rm -rf {} +
find "${build}/pkgroot" -name '*.so' -type f -exec strip --strip-unneeded {} +
# C sources and headers some wheels ship beside their compiled module (markupsafe's
# _speedups.c, multidict's C API headers): not needed at run time, and rpmlint's
# devel-file-in-non-devel-package.
find "${build}/pkgroot" -path '*/site-packages/*' \( -name '*.c' -o -name '*.h' \) -type f -delete

# 4. Docs and maintainer scripts.
if [[ -f docs/deploy.md ]]; then
  cp docs/deploy.md "${build}/pkgdoc/README.md"
else
  echo "See docs/deploy.md in the sourcegraph-executor-py repository." >"${build}/pkgdoc/README.md"
fi
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
{
  echo "sourcegraph-executor-py (${VERSION}-1) stable; urgency=medium"
  echo
  echo "  * Release ${VERSION}. See the project's git history for the changes."
  echo
  echo " -- Sourcegraph executor (Python) maintainers <executor-py@example.com>  $(date -R -u -d "@${epoch}")"
} | gzip -9n >"${build}/pkgdoc/changelog.Debian.gz"
gzip -9n <packaging/files/executor.1 >"${build}/pkgdoc/executor.1.gz"
inline_common() {
  python3 - "$1" "$2" <<'PY'
import sys
src, dst = sys.argv[1], sys.argv[2]
common = open("packaging/scripts/common.sh").read().rstrip("\n")
open(dst, "w").write(open(src).read().replace("@COMMON@", common))
PY
  chmod 0755 "$2"
}
inline_common packaging/scripts/deb/postinst.in "${build}/pkgscripts/deb/postinst"
inline_common packaging/scripts/rpm/post.in "${build}/pkgscripts/rpm/post"

# 5. Packages.
mkdir -p "${dist}"
rm -f "${dist}"/sourcegraph-executor-py[_-]*.deb "${dist}"/sourcegraph-executor-py-*.rpm
"${nfpm}" package --config packaging/nfpm.yaml --packager deb --target "${dist}/" >&2
"${nfpm}" package --config packaging/nfpm.yaml --packager rpm --target "${dist}/" >&2
ls -1 "${dist}"/sourcegraph-executor-py*
