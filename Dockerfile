# syntax=docker/dockerfile:1
# Sourcegraph executor (Python) container image.
#
#   docker build -t sourcegraph-executor-py .
#   docker build --build-arg BASE_IMAGE=executor-base:bookworm -t sourcegraph-executor-py .
#
# BASE_IMAGE must be Debian bookworm (or compatible: apt, python3.11). CI imports one built with
# debootstrap (deploy/scripts/make-base-image.sh) because no registry is reachable there.
# Offline builds: put wheels in deploy/docker/wheels/ and pass --build-arg PIP_NO_INDEX=1
# (packaging/build.sh does both). Usage and variables: docs/deploy.md.
#checkov:skip=CKV_DOCKER_7:The base is a build argument (a pinned bookworm tag by default; CI imports its own debootstrap root).
ARG BASE_IMAGE=debian:bookworm-slim

# --- docker CLI only: Debian's docker.io package also ships dockerd, containerd and runc, which
# --- an executor that talks to a mounted socket never needs. Take just /usr/bin/docker (libc only).
FROM ${BASE_IMAGE} AS docker-cli
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /tmp/docker-cli
RUN apt-get update \
 && apt-get download docker.io \
 && dpkg-deb --fsys-tarfile docker.io_*.deb | tar -x ./usr/bin/docker \
 && install -m 0755 usr/bin/docker /docker \
 && rm -rf /var/lib/apt/lists/* /tmp/docker-cli

# --- the venv, built at its final path with the distribution's python3.11 (packaging/build.sh
# --- copies this same tree into the deb/rpm, so image and packages run identical code).
FROM ${BASE_IMAGE} AS venv
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# pip reads PIP_NO_INDEX from the environment: 1 = install only from deploy/docker/wheels.
ARG PIP_NO_INDEX=0
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/docker/wheels/ /tmp/wheels/
COPY pyproject.toml README.m[d] /src/
COPY executor/ /src/executor/
# A throwaway venv holds pip; /opt/executor itself gets no pip or setuptools.
RUN python3.11 -m venv /tmp/bootstrap \
 && python3.11 -m venv --without-pip /opt/executor \
 && /tmp/bootstrap/bin/pip --python /opt/executor/bin/python3.11 install \
      --no-cache-dir --disable-pip-version-check --find-links /tmp/wheels /src \
 && /opt/executor/bin/python3.11 -c 'import executor' \
 && rm -rf /tmp/bootstrap /tmp/wheels /src

# --- runtime
FROM ${BASE_IMAGE} AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
LABEL org.opencontainers.image.title="sourcegraph-executor-py" \
      org.opencontainers.image.description="Python executor daemon for Sourcegraph" \
      org.opencontainers.image.licenses="Apache-2.0"
# Like the official slim images: no docs, man pages or locales (git's alone are ~10 MB).
RUN printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
      'path-exclude /usr/share/man/*' 'path-exclude /usr/share/locale/*' \
      'path-exclude /usr/share/info/*' >/etc/dpkg/dpkg.cfg.d/01-slim \
 && apt-get update \
 && apt-get install -y --no-install-recommends python3.11 git ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 executor \
 && useradd --system --uid 10001 --gid executor --home-dir /var/lib/executor \
      --shell /usr/sbin/nologin executor \
 && install -d -o executor -g executor -m 0750 /var/lib/executor /var/lib/executor/workspaces
COPY --from=docker-cli /docker /usr/local/bin/docker
COPY --from=venv /opt/executor /opt/executor
COPY deploy/docker/healthcheck.py /opt/executor/healthcheck.py
# Jobs run as sibling containers on the host's daemon, so workspaces must live at the same path
# on host and container: mount one (e.g. -v /scratch:/scratch) and point TMPDIR and
# EXECUTOR_DOCKER_HOST_MOUNT_PATH at it. The default below is only for `validate`/`--version`.
ENV PATH=/opt/executor/bin:${PATH} \
    HOME=/var/lib/executor \
    TMPDIR=/var/lib/executor/workspaces \
    EXECUTOR_USE_FIRECRACKER=false \
    EXECUTOR_METRICS_PORT=6060 \
    EXECUTOR_HEALTH_SERVER_ADDR=127.0.0.1:8080 \
    PYTHONDONTWRITEBYTECODE=1
# The socket is mounted at run time; its group differs per host, so grant it with
#   --group-add "$(stat -c %g /var/run/docker.sock)"
# Numeric, so a PodSecurity runAsNonRoot check can verify it (10001 = executor, created above).
USER 10001:10001
WORKDIR /var/lib/executor
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/opt/executor/bin/python3.11", "/opt/executor/healthcheck.py"]
# tini forwards SIGTERM (first = drain, second = cancel) and reaps git/docker children.
ENTRYPOINT ["/usr/bin/tini", "--", "executor"]
CMD ["run"]
