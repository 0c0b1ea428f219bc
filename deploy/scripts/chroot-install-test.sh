#!/usr/bin/env bash
# Install the built deb into a fresh Debian bookworm root (the debootstrap tarball from
# make-base-image.sh) and check what the package promises: `executor --version` runs, the user
# is in the docker group, the env file is a 0600 conffile, the unit is installed, and
# removing/purging works (maintainer scripts re-run safely: install twice, then purge).
#
# Usage: chroot-install-test.sh path/to.deb
# Env:   EXECUTOR_DEPLOY_CACHE (default /var/cache/executor-deploy): tarball + apt archive cache.
set -euo pipefail

deb="$(realpath "$1")"
cache="${EXECUTOR_DEPLOY_CACHE:-/var/cache/executor-deploy}"
tarball="${cache}/bookworm-minbase.tar"
archives="${cache}/apt-archives"
[[ -s "${tarball}" ]] || { echo "chroot-install-test: missing ${tarball}" >&2; exit 1; }
mkdir -p "${archives}/partial"

root="$(mktemp -d /tmp/executor-chroot.XXXXXX)"
# shellcheck disable=SC2329 # invoked by the EXIT trap
cleanup() {
  umount "${root}/var/cache/apt/archives" 2>/dev/null || true
  umount "${root}/proc" 2>/dev/null || true
  rm -rf --one-file-system "${root}"
}
trap cleanup EXIT

tar -C "${root}" -xf "${tarball}"
cp /etc/resolv.conf "${root}/etc/resolv.conf"
mount --bind "${archives}" "${root}/var/cache/apt/archives"
mount -t proc proc "${root}/proc"
cp "${deb}" "${root}/tmp/pkg.deb"
in_root() { chroot "${root}" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }

in_root apt-get -q -o APT::Sandbox::User=root update >/dev/null
in_root apt-get -q -o APT::Sandbox::User=root install -y --no-install-recommends /tmp/pkg.deb >"${root}/tmp/install.log" 2>&1 || {
  tail -n 40 "${root}/tmp/install.log" >&2
  exit 1
}
fail=0
check() { # description, command...
  local what="$1"; shift
  if "$@"; then echo "ok: ${what}"; else echo "FAIL: ${what}" >&2; fail=1; fi
}
check "executor --version runs in the fresh root" in_root /usr/bin/executor --version
check "executor user exists and is in group docker" \
  sh -c "chroot '${root}' id -nG executor | tr ' ' '\n' | grep -qx docker"
check "env file is 0600 root:root" \
  sh -c "[ \"\$(stat -c %a:%U:%G '${root}/etc/executor/executor.env')\" = 600:root:root ]"
check "env file is a conffile" \
  sh -c "grep -qx /etc/executor/executor.env '${root}/var/lib/dpkg/info/sourcegraph-executor-py.conffiles'"
check "unit installed" test -f "${root}/lib/systemd/system/executor.service"
check "state dir owned by executor" \
  sh -c "[ \"\$(chroot '${root}' stat -c %U:%a /var/lib/executor/workspaces)\" = executor:750 ]"
check "reinstall is safe (postinst re-runs)" \
  in_root sh -c 'apt-get -q install -y --reinstall /tmp/pkg.deb >/dev/null 2>&1'
check "remove keeps the conffile" \
  sh -c "chroot '${root}' dpkg -r sourcegraph-executor-py >/dev/null && test -f '${root}/etc/executor/executor.env'"
check "purge removes conffile and state" \
  sh -c "chroot '${root}' dpkg -P sourcegraph-executor-py >/dev/null && ! test -e '${root}/etc/executor/executor.env' && ! test -e '${root}/var/lib/executor'"
exit "${fail}"
