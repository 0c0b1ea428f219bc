# Shared by the deb and rpm maintainer scripts (inlined into each by packaging/build.sh, since
# nfpm ships single files). Everything here is idempotent: safe on reinstall and upgrade.

# The executor user: system account, no login, home = state dir, in the docker group so it can
# reach /var/run/docker.sock. The docker group is created if docker is not installed yet (the
# docker packages reuse an existing group).
executor_ensure_user() {
  if ! getent group docker >/dev/null; then
    groupadd --system docker
  fi
  if ! getent group executor >/dev/null; then
    groupadd --system executor
  fi
  if ! getent passwd executor >/dev/null; then
    useradd --system --gid executor --groups docker --home-dir /var/lib/executor \
      --no-create-home --shell /usr/sbin/nologin --comment "Sourcegraph executor" executor
  else
    usermod --append --groups docker executor
  fi
  install -d -o executor -g executor -m 0750 /var/lib/executor /var/lib/executor/workspaces
  # It holds the token: keep it 0600 even if an admin loosened it.
  chmod 0600 /etc/executor/executor.env
}

# Byte-compile the bundled venv (not shipped: see packaging/build.sh). /opt is read-only for the
# service (ProtectSystem=strict), so this is the only chance to write the caches.
executor_compile() {
  /opt/executor/bin/python3.11 -m compileall -q -j 0 /opt/executor/lib >/dev/null 2>&1 || true
}

# Remove what executor_compile wrote, so the package manager can remove the directories.
executor_uncompile() {
  if [ -d /opt/executor ]; then
    find /opt/executor -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
  fi
}
