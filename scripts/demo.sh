#!/usr/bin/env bash
# The README's first command: a real batch change, end to end, on this machine.
#
#   1. set the machine up (scripts/setup.sh: git, Docker, the venv, the busybox step image);
#   2. start the sandbox frontend on a free loopback port, with a temporary data directory
#      and a random site token, and host three generated sample repositories;
#   3. start the executor daemon against it (queue `batches`, small job limits);
#   4. apply examples/hello-world.batch.yaml and wait: one job per workspace, the steps run in
#      Docker, the changeset specs and their diffs are printed, then the jobs the daemon
#      dequeued and the first one's execution logs (git, the batch exec events, teardown);
#   5. apply it again: every result comes from the cache, no job and no container;
#   6. print the web page's address (/sandbox/ui/, sign in with the site token): STAY=1 keeps
#      the sandbox and the daemon up until Ctrl-C so the page can be browsed;
#   7. stop the daemon (SIGTERM, it drains) and the sandbox, and remove the temporary files.
#
# Environment: SPEC (default examples/hello-world.batch.yaml), KEEP=1 keeps the data directory,
# STAY=1 waits for Ctrl-C before stopping, V2=1 makes the sandbox send V2 batches jobs
# (`--native-server-side-execution`: batcheshelper docker steps, the executor-batcheshelper image).
# RUNTIME=kubernetes runs the jobs on the test cluster instead (docs/kubernetes.md): it builds
# (once, cached) and starts `scripts/k8s-cluster.sh`, makes the sandbox send V2 jobs (a pod has
# no Docker) and runs the daemon with the Kubernetes runtime in namespace `default`: one Job per
# workspace, `setup-workspace` and the `.pre`/`.post` steps in executor-batcheshelper:latest.
# The changeset specs are the same as with Docker. The cluster stays up (`k8s-cluster.sh down`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null

spec=${SPEC:-examples/hello-world.batch.yaml}
work=$(mktemp -d "${TMPDIR:-/tmp}/executor-demo.XXXXXX")
mkdir -p "$work/workspaces"
py=.venv/bin/python
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=$("$py" -c 'import secrets; print(secrets.token_hex(20))')
export SANDBOX_URL="http://127.0.0.1:$port" SANDBOX_TOKEN="$token"
sandbox_pid="" daemon_pid=""

stop() {  # stop <pid>: SIGTERM, then wait up to 30 s before SIGKILL
  local pid=$1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  local status=$?
  stop "$daemon_pid"
  stop "$sandbox_pid"
  if ((status != 0)); then
    echo "demo failed; last lines of the logs:" >&2
    tail -n 20 "$work/sandbox.log" "$work/daemon.log" >&2 2>/dev/null || true
  fi
  if [[ "${KEEP:-0}" == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "▶ sandbox on $SANDBOX_URL (data in $work); web page $SANDBOX_URL/sandbox/ui/"
runtime_env=()
if [[ "${RUNTIME:-docker}" == kubernetes ]]; then
  echo "▶ the Kubernetes test cluster (scripts/k8s-cluster.sh build && up)"
  bash scripts/k8s-cluster.sh build >/dev/null && bash scripts/k8s-cluster.sh up >/dev/null
  eval "$(bash scripts/k8s-cluster.sh env)"
  V2=1
  # Loopback only on this machine: pods use the host's network to reach the sandbox, and the
  # images come from the local engine (nothing can be pulled).
  runtime_env=(EXECUTOR_KUBERNETES_CONFIG_PATH="$KUBECONFIG" EXECUTOR_KUBERNETES_NAMESPACE=default
    KUBERNETES_SINGLE_JOB_STEP_IMAGE=executor-batcheshelper:latest KUBERNETES_JOB_HOST_NETWORK=true
    KUBERNETES_IMAGE_PULL_POLICY=Never KUBERNETES_FS_GROUP=-1
    EXECUTOR_KUBERNETES_RESOURCE_REQUEST_MEMORY=64Mi EXECUTOR_KUBERNETES_RESOURCE_LIMIT_MEMORY=512Mi)
elif [[ "${RUNTIME:-docker}" != docker ]]; then
  echo "RUNTIME must be docker or kubernetes, not ${RUNTIME}" >&2
  exit 2
fi
v2_flags=()
[[ "${V2:-0}" == 1 ]] && v2_flags=(--native-server-side-execution)
.venv/bin/executor sandbox serve --port "$port" --data-dir "$work/sandbox" \
  --token "$token" --log-level warning "${v2_flags[@]}" >"$work/sandbox.log" 2>&1 &
sandbox_pid=$!
for _ in $(seq 100); do
  .venv/bin/executor sandbox repo list >/dev/null 2>&1 && break
  sleep 0.1
done
.venv/bin/executor sandbox repo add-samples

echo "▶ executor daemon (queue batches, runtime ${RUNTIME:-docker})"
env -i PATH="$PATH" HOME="${HOME:-/root}" TMPDIR="$work/workspaces" \
  ${DOCKER_HOST:+DOCKER_HOST="$DOCKER_HOST"} "${runtime_env[@]}" \
  EXECUTOR_FRONTEND_URL="$SANDBOX_URL" EXECUTOR_FRONTEND_PASSWORD="$token" \
  EXECUTOR_QUEUE_NAME=batches EXECUTOR_QUEUE_POLL_INTERVAL=200ms \
  EXECUTOR_MAXIMUM_NUM_JOBS=4 EXECUTOR_JOB_NUM_CPUS=1 EXECUTOR_JOB_MEMORY=256M \
  .venv/bin/executor run >"$work/daemon.log" 2>&1 &
daemon_pid=$!

echo "▶ executor sandbox batch apply $spec --wait"
start=$(date +%s.%N)
.venv/bin/executor sandbox batch apply "$spec" --wait
first=$("$py" -c "import time; print(f'{time.time() - $start:.1f}')")

echo "▶ the jobs the daemon dequeued, and the first one's execution logs"
.venv/bin/executor sandbox jobs --queue batches
.venv/bin/executor sandbox logs 1

echo "▶ the same spec again: the results come from the cache, no job, no container"
start=$(date +%s.%N)
.venv/bin/executor sandbox batch apply "$spec" --wait --summary
again=$("$py" -c "import time; print(f'{time.time() - $start:.1f}')")
echo "first apply ${first}s, re-apply ${again}s"
"$py" -c 'import os, httpx
r = httpx.get(os.environ["SANDBOX_URL"] + "/sandbox/ui/",
              headers={"Authorization": "token-executor " + os.environ["SANDBOX_TOKEN"]})
assert r.status_code == 200 and "Executors" in r.text, r.status_code'
echo "▶ web page: $SANDBOX_URL/sandbox/ui/ (site token $token)"
if [[ "${STAY:-0}" == 1 ]]; then
  echo "  STAY=1: the sandbox and the daemon stay up; Ctrl-C stops them"
  wait "$sandbox_pid" || true
fi
