#!/usr/bin/env bash
# Sets up a fresh machine for the executor: Debian packages, the virtualenv, the step image and
# the batch helper image (scripts/build-images.sh).
# Idempotent and quiet when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
need=()
command -v git >/dev/null || need+=(git)
[[ -x /bin/busybox ]] || need+=(busybox-static)
command -v docker >/dev/null || need+=(docker.io)
# The project's base image for the batch helper image (scripts/build-images.sh).
command -v debootstrap >/dev/null || need+=(debootstrap)
# The egress firewall test builds network namespaces (tests/deploy/test_egress_firewall.py).
command -v ip >/dev/null || need+=(iproute2)
command -v iptables >/dev/null || need+=(iptables)
# The registry-mirror test (tests/e2e/test_registry_mirror_e2e.py): the distribution registry.
command -v docker-registry >/dev/null || need+=(docker-registry)
# The web page's browser test (tests/integration/test_sandbox_web_browser.py).
[[ -x /usr/bin/chromium ]] || need+=(chromium)
[[ -x /usr/bin/chromedriver ]] || need+=(chromium-driver)
if ((${#need[@]})); then
  if [[ $(id -u) == 0 ]]; then SUDO=(); else SUDO=(sudo); fi
  "${SUDO[@]}" apt-get update -q >/dev/null
  "${SUDO[@]}" apt-get install -y -q "${need[@]}" >/dev/null
fi
PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c 'import executor, pytest, ruff' >/dev/null 2>&1 \
   || [[ pyproject.toml -nt .venv/.installed ]]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[dev]'
  touch .venv/.installed
fi
bash scripts/build-images.sh
