#!/usr/bin/env bash
# A real single-node Kubernetes (1.20, Debian's `kubernetes` source package) on this machine, on
# loopback only, for the Kubernetes runtime's tests. See docs/kubernetes.md.
#
#   k8s-cluster.sh build    install build deps, patch, build and cache the binaries; pause image
#   k8s-cluster.sh up       PKI, kubeconfig, start etcd + control plane + kubelet; wait until Ready
#   k8s-cluster.sh down     stop what `up` started, remove the pods' containers (cache is kept)
#   k8s-cluster.sh status   what runs, the node's state
#   k8s-cluster.sh env      `export KUBECONFIG=...` and the kubectl path, for eval
#
# The binaries are cached outside the repository in
# ${EXECUTOR_K8S_CACHE:-/var/cache/executor-k8s}/bin-<source version>-<patch hash>/; the running
# cluster's state (PKI, kubeconfig, etcd data, kubelet root, logs, pid files) is in
# ${EXECUTOR_K8S_STATE:-/var/tmp/executor-k8s}.
#
# Network rule: every listener binds 127.0.0.1. There is no kube-proxy, CNI or cluster DNS, so a
# ClusterIP (10.0.0.x) routes nowhere; nothing here (or in the tests) ever contacts one.
set -euo pipefail

CACHE=${EXECUTOR_K8S_CACHE:-/var/cache/executor-k8s}
STATE=${EXECUTOR_K8S_STATE:-/var/tmp/executor-k8s}
UP_TIMEOUT=${EXECUTOR_K8S_UP_TIMEOUT:-120}
PAUSE_IMAGE=k8s.gcr.io/pause:3.2
NODE=node1
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)
# Start order; `down` stops in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet)
APT_PACKAGES=(golang-go etcd-server rsync jq gcc libc6-dev openssl dpkg-dev patch curl
  golang-github-modern-go-reflect2-dev)
# The vendored github.com/modern-go/reflect2 v1.0.1 predates Go 1.18: built with Debian's Go
# 1.19, every map that json-iterator encodes with sorted keys (all JSON the API machinery writes,
# e.g. `kubectl config`) panics in reflect.mapiternext. Debian's package of its fixed release
# (1.0.2, API-compatible) replaces it in vendor/.
REFLECT2_PKG=golang-github-modern-go-reflect2-dev
REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2

# The three one-line patches (docs/kubernetes.md says why). Applied with --fuzz=0: a source that
# does not match them exactly stops the build.
PATCHES=$(
  cat <<'EOF'
--- a/pkg/kubelet/dockershim/docker_sandbox.go
+++ b/pkg/kubelet/dockershim/docker_sandbox.go
@@ -50,7 +50,7 @@
 	// impossible, that the defaultSandox will experience an oom kill. -998
 	// is chosen to signify sandbox should be OOM killed before other more
 	// vital processes like the docker daemon, the kubelet, etc...
-	defaultSandboxOOMAdj int = -998
+	defaultSandboxOOMAdj int = 0
 
 	// Name of the underlying container runtime
 	runtimeName = "docker"
--- a/pkg/kubelet/kubelet_node_status.go
+++ b/pkg/kubelet/kubelet_node_status.go
@@ -622,7 +622,7 @@
 	if nodeIP.To4() == nil && nodeIP.To16() == nil {
 		return fmt.Errorf("nodeIP must be a valid IP address")
 	}
-	if nodeIP.IsLoopback() {
+	if false && nodeIP.IsLoopback() {
 		return fmt.Errorf("nodeIP can't be loopback address")
 	}
 	if nodeIP.IsMulticast() {
--- a/pkg/kubelet/qos/policy.go
+++ b/pkg/kubelet/qos/policy.go
@@ -27,7 +27,7 @@
 	KubeletOOMScoreAdj int = -999
 	// KubeProxyOOMScoreAdj is the OOM score adjustment for kube-proxy
 	KubeProxyOOMScoreAdj  int = -999
-	guaranteedOOMScoreAdj int = -997
+	guaranteedOOMScoreAdj int = 0
 	besteffortOOMScoreAdj int = 1000
 )
 
EOF
)

log() { printf 'k8s-cluster: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

if [[ $(id -u) == 0 ]]; then SUDO=(); else SUDO=(sudo); fi

# --- build -----------------------------------------------------------------------------------

ensure_deb_src() {
  if grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/ \
    && apt-cache showsrc kubernetes >/dev/null 2>&1; then
    return
  fi
  log "adding deb-src for bookworm main"
  "${SUDO[@]}" tee /etc/apt/sources.list.d/executor-k8s-src.sources >/dev/null <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  "${SUDO[@]}" apt-get update -q >/dev/null
  apt-cache showsrc kubernetes >/dev/null 2>&1 || die "no source package 'kubernetes' after apt-get update"
}

ensure_packages() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
    || {
      "${SUDO[@]}" apt-get update -q >/dev/null
      "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
    }
}

source_version() {
  apt-cache showsrc kubernetes 2>/dev/null | awk '/^Version:/ {print $2}' | sort -V | tail -n1
}

# What the build changes in the source: our patches and the reflect2 that replaces the vendored one.
patch_hash() {
  { printf '%s\n' "$PATCHES"; dpkg-query -W -f='${Version}\n' "$REFLECT2_PKG"; } \
    | sha256sum | cut -c1-12
}

# The cache directory of the binaries for the current source version and patches.
bin_dir() {
  local version
  version=$(source_version)
  [[ -n $version ]] || die "cannot tell the 'kubernetes' source version (no deb-src? run: $0 build)"
  printf '%s/bin-%s-%s\n' "$CACHE" "$version" "$(patch_hash)"
}

have_binaries() {
  local dir=$1 b
  for b in "${BINARIES[@]}"; do [[ -x $dir/$b ]] || return 1; done
  [[ -f $dir/pause.c ]]
}

build_binaries() {
  local dir=$1 version work src started=$SECONDS
  version=$(source_version)
  work="$CACHE/work-$version"
  rm -rf "$work"
  mkdir -p "$work"
  log "building Kubernetes $version into $dir (about 7 minutes on 2 cores)"
  # (apt warns that it downloads as root, unsandboxed: expected here.)
  (cd "$work" && apt-get source --download-only "kubernetes=$version" 2>&1 >/dev/null \
    | { grep -v 'unsandboxed as root' || true; } >&2)
  # dpkg-source applies Debian's own patches (debian/patches/series) as the package build does.
  (cd "$work" && dpkg-source --no-check -x ./*.dsc src >/dev/null)
  src="$work/src"
  printf '%s\n' "$PATCHES" | patch -d "$src" -p1 --forward --fuzz=0 --batch --no-backup-if-mismatch >&2 \
    || die "a patch does not apply to kubernetes $version; see docs/kubernetes.md"
  if ! grep -q 'defaultSandboxOOMAdj int = 0' "$src/pkg/kubelet/dockershim/docker_sandbox.go" \
    || ! grep -q 'guaranteedOOMScoreAdj int = 0' "$src/pkg/kubelet/qos/policy.go" \
    || ! grep -q 'if false && nodeIP.IsLoopback()' "$src/pkg/kubelet/kubelet_node_status.go"; then
    die "patched source does not contain the expected lines"
  fi
  [[ -f $REFLECT2_SRC/go_above_118.go ]] || die "$REFLECT2_SRC has no Go 1.18 support"
  rsync -a --delete --exclude=go.mod "$REFLECT2_SRC/" "$src/vendor/github.com/modern-go/reflect2/"
  # GOPATH mode, as debian/rules builds (`go build -mod=vendor` fails: "updates to go.mod needed").
  mkdir -p "$src/.go/src/k8s.io" "$work/home"
  ln -sfn ../../.. "$src/.go/src/k8s.io/kubernetes"
  local what="" b
  for b in "${BINARIES[@]}"; do what+=" cmd/$b"; done
  (cd "$src" && env HOME="$work/home" GOPATH="$src/.go" PATH="/usr/lib/go/bin:$PATH" \
    CGO_ENABLED=0 make WHAT="${what# }") >"$work/build.log" 2>&1 \
    || {
      tail -n 40 "$work/build.log" >&2
      die "make failed; full log in $work/build.log"
    }
  local tmp="$dir.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  for b in "${BINARIES[@]}"; do cp "$src/_output/bin/$b" "$tmp/$b"; done
  # pause.c stays beside the binaries so the pause image can be rebuilt without the source tree.
  cp "$src/build/pause/linux/pause.c" "$tmp/pause.c"
  printf '%s\n' "$PATCHES" >"$tmp/patches.diff"
  dpkg-query -W -f='${Package} ${Version}\n' "$REFLECT2_PKG" >"$tmp/reflect2.version"
  mv "$tmp" "$dir"
  rm -rf "$work"
  log "built in $((SECONDS - started)) s"
}

build_pause_image() {
  docker image inspect "$PAUSE_IMAGE" >/dev/null 2>&1 && return 0
  local dir=$1 ctx
  ctx=$(mktemp -d)
  gcc -Os -static -o "$ctx/pause" "$dir/pause.c"
  printf 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n' >"$ctx/Dockerfile"
  local out
  out=$(docker build -q -t "$PAUSE_IMAGE" "$ctx" 2>&1) || die "docker build of $PAUSE_IMAGE: $out"
  rm -rf "$ctx"
  log "built $PAUSE_IMAGE"
}

# One build at a time, one up/down at a time (a second caller waits for the first).
lock() {
  mkdir -p "$1"
  exec 9>"$1/.lock"
  flock 9
}

cmd_build() {
  lock "$CACHE"
  ensure_deb_src
  ensure_packages
  local dir
  dir=$(bin_dir)
  if ! have_binaries "$dir"; then
    mkdir -p "$CACHE"
    build_binaries "$dir"
  fi
  build_pause_image "$dir"
  # Older builds (another source version or patch set) go, unless a cluster still runs on one.
  local old in_use
  in_use=$(readlink -f "$STATE/bin" 2>/dev/null || true)
  for old in "$CACHE"/bin-*; do
    [[ -d $old && $old != "$dir" && $old != "$in_use" ]] || continue
    log "removing the older build $old"
    rm -rf "$old"
  done
  log "binaries in $dir"
}

# --- up / down -------------------------------------------------------------------------------

kubectl_() { "$STATE/bin/kubectl" --kubeconfig="$STATE/admin.kubeconfig" "$@"; }

# Whether the pid file of component $1 names a live process that is that component (the pid of
# one killed without `down`, e.g. at a machine's restart, may belong to another process by now).
pid_alive() {
  local f="$STATE/run/$1.pid" pid argv0 want
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  argv0=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | head -n1) || return 1
  want=$(component_argv "$1" | head -n1)
  [[ -n $argv0 && $argv0 == "$want" ]]
}

make_pki() {
  local pki="$STATE/pki"
  [[ -f $pki/admin.crt ]] && return 0
  log "creating PKI in $pki"
  rm -rf "$pki"
  mkdir -p "$pki"
  (
    cd "$pki"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj /CN=executor-k8s-ca -addext basicConstraints=critical,CA:TRUE \
      -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    sign() { # name subject extensions
      openssl req -new -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
      printf '%s\n' "$3" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    sign apiserver /CN=kube-apiserver "$(printf '%s\n' \
      'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
      'extendedKeyUsage=serverAuth' \
      'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc')"
    sign admin '/O=system:masters/CN=admin' "$(printf '%s\n' \
      'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
      'extendedKeyUsage=clientAuth')"
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

make_kubeconfig() {
  local k="$STATE/admin.kubeconfig" pki="$STATE/pki"
  [[ -f $k ]] && return 0
  local tmp="$k.tmp"
  rm -f "$tmp"
  "$STATE/bin/kubectl" config --kubeconfig="$tmp" set-cluster executor-k8s \
    --server=https://127.0.0.1:6443 --certificate-authority="$pki/ca.crt" --embed-certs=true >/dev/null
  "$STATE/bin/kubectl" config --kubeconfig="$tmp" set-credentials admin \
    --client-certificate="$pki/admin.crt" --client-key="$pki/admin.key" --embed-certs=true >/dev/null
  "$STATE/bin/kubectl" config --kubeconfig="$tmp" set-context executor-k8s \
    --cluster=executor-k8s --user=admin --namespace=default >/dev/null
  "$STATE/bin/kubectl" config --kubeconfig="$tmp" use-context executor-k8s >/dev/null
  chmod 600 "$tmp"
  mv "$tmp" "$k"
}

make_kubelet_config() {
  cat >"$STATE/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failSwapOn: false
address: 127.0.0.1
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: $STATE/pki/ca.crt
authorization:
  mode: AlwaysAllow
evictionHard:
  memory.available: 1Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
EOF
}

ensure_hosts_entry() {
  grep -qE "^127\.0\.0\.1([[:space:]].*)?[[:space:]]$NODE([[:space:]]|\$)" /etc/hosts && return 0
  log "adding '127.0.0.1 $NODE' to /etc/hosts"
  # Append rather than rewrite: /etc/hosts is often a bind mount.
  printf '127.0.0.1 %s\n' "$NODE" | "${SUDO[@]}" tee -a /etc/hosts >/dev/null
}

component_argv() {
  local pki="$STATE/pki" k="$STATE/admin.kubeconfig" b="$STATE/bin"
  case $1 in
    etcd)
      printf '%s\n' /usr/bin/etcd --name=default --data-dir="$STATE/etcd" \
        --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
        --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
        --initial-cluster=default=http://127.0.0.1:2380
      ;;
    kube-apiserver)
      printf '%s\n' "$b/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 --secure-port=6443 \
        --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
        --service-cluster-ip-range=10.0.0.0/24 \
        --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
        --client-ca-file="$pki/ca.crt" --service-account-issuer=https://kubernetes.default.svc \
        --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
        --authorization-mode=Node,RBAC --allow-privileged=true \
        --kubelet-client-certificate="$pki/admin.crt" --kubelet-client-key="$pki/admin.key"
      ;;
    kube-controller-manager)
      # --port=0: no insecure listener (it would bind 0.0.0.0:10252).
      printf '%s\n' "$b/kube-controller-manager" --kubeconfig="$k" \
        --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
        --use-service-account-credentials=true --controllers='*,-nodeipam' --leader-elect=false \
        --bind-address=127.0.0.1 --port=0
      ;;
    kube-scheduler)
      printf '%s\n' "$b/kube-scheduler" --kubeconfig="$k" --leader-elect=false \
        --bind-address=127.0.0.1 --port=0
      ;;
    kubelet)
      printf '%s\n' "$b/kubelet" --kubeconfig="$k" --config="$STATE/kubelet-config.yaml" \
        --container-runtime=docker --root-dir="$STATE/kubelet" --hostname-override="$NODE" \
        --pod-infra-container-image="$PAUSE_IMAGE" --node-ip=127.0.0.1
      ;;
  esac
}

start_component() {
  local name=$1 argv
  pid_alive "$name" && return 0
  mapfile -t argv < <(component_argv "$name")
  log "starting $name"
  # 9>&-: the components must not inherit (and hold) the lock. AWS_EC2_METADATA_DISABLED: the
  # kubelet's in-tree ECR credential provider otherwise asks the EC2 metadata address
  # (169.254.169.254) for credentials at start, and nothing may leave loopback.
  AWS_EC2_METADATA_DISABLED=true setsid "${argv[@]}" </dev/null >>"$STATE/logs/$name.log" 2>&1 9>&- &
  echo $! >"$STATE/run/$name.pid"
}

# Polls `check` (a function name) every second until it succeeds or the deadline passes.
wait_for() {
  local what=$1 check=$2 deadline=$3
  until "$check"; do
    ((SECONDS < deadline)) || die "timed out waiting for $what; logs in $STATE/logs"
    sleep 1
  done
}
# The checks below are called through wait_for's "$check".
# shellcheck disable=SC2317
etcd_healthy() { curl -fsS --max-time 2 http://127.0.0.1:2379/health >/dev/null 2>&1; }
apiserver_ready() { kubectl_ get --raw /readyz >/dev/null 2>&1; }
node_ready() {
  [[ $(kubectl_ get node "$NODE" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}
default_sa() { kubectl_ -n default get serviceaccount default >/dev/null 2>&1; }
any_alive() {
  local c
  for c in "${COMPONENTS[@]}"; do pid_alive "$c" && return 0; done
  return 1
}
all_alive() {
  local c
  for c in "${COMPONENTS[@]}"; do pid_alive "$c" || return 1; done
}

cmd_up() {
  local dir
  dir=$(bin_dir)
  have_binaries "$dir" || die "no binaries in $dir; run: $0 build"
  docker image inspect "$PAUSE_IMAGE" >/dev/null 2>&1 || die "no $PAUSE_IMAGE image; run: $0 build"
  command -v /usr/bin/etcd >/dev/null || die "etcd missing; run: $0 build"
  if all_alive && apiserver_ready && node_ready && default_sa; then
    log "already up"
    return 0
  fi
  mkdir -p "$STATE"
  ln -sfn "$dir" "$STATE/bin"
  if ! any_alive; then
    # Nothing of ours runs (first start, or killed without `down`): start from a clean slate.
    remove_leftovers
  fi
  mkdir -p "$STATE/run" "$STATE/logs" "$STATE/kubelet"
  make_pki
  make_kubeconfig
  make_kubelet_config
  ensure_hosts_entry
  local started=$SECONDS deadline=$((SECONDS + UP_TIMEOUT))
  start_component etcd
  wait_for etcd etcd_healthy "$deadline"
  start_component kube-apiserver
  wait_for kube-apiserver apiserver_ready "$deadline"
  start_component kube-controller-manager
  start_component kube-scheduler
  start_component kubelet
  wait_for "node $NODE Ready" node_ready "$deadline"
  wait_for "the default service account" default_sa "$deadline"
  all_alive || die "a component exited; logs in $STATE/logs"
  log "up in $((SECONDS - started)) s; eval \"\$($0 env)\""
}

stop_component() {
  local name=$1 f="$STATE/run/$1.pid" pid i
  [[ -f $f ]] || return 0
  pid=$(<"$f")
  if pid_alive "$name"; then
    log "stopping $name ($pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$f"
}

# What a stopped cluster leaves: the pods' containers, the kubelet's mounts, etcd's data.
remove_leftovers() {
  local i ids mounts
  # The kubelet's pods outlive it as Docker containers named k8s_<container>_<pod>_...
  mapfile -t ids < <(docker ps -aq --filter 'name=^/?k8s_' 2>/dev/null)
  if ((${#ids[@]})); then
    log "removing ${#ids[@]} pod containers"
    docker rm -f "${ids[@]}" >/dev/null
  fi
  # The kubelet bind-mounts its root onto itself; secret and projected volumes are tmpfs mounts
  # under it. Deepest first, and as often as each is stacked.
  if [[ -d $STATE/kubelet ]]; then
    mapfile -t mounts < <(awk -v root="$STATE/kubelet" \
      '$2 == root || index($2, root "/") == 1 {print $2}' /proc/self/mounts | sort -r)
    for i in "${mounts[@]}"; do "${SUDO[@]}" umount "$i" || "${SUDO[@]}" umount -l "$i"; done
  fi
  # A fresh cluster each time (no Jobs left from the last run); the PKI and kubeconfig stay.
  rm -rf "$STATE/etcd" "$STATE/kubelet"
}

cmd_down() {
  local i
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do stop_component "${COMPONENTS[i]}"; done
  remove_leftovers
  log "down"
}

cmd_status() {
  local c rc=0
  for c in "${COMPONENTS[@]}"; do
    if pid_alive "$c"; then
      printf '%-24s running (pid %s)\n' "$c" "$(<"$STATE/run/$c.pid")"
    else
      printf '%-24s stopped\n' "$c"
      rc=1
    fi
  done
  if ((rc == 0)) && [[ -x $STATE/bin/kubectl ]]; then
    kubectl_ get nodes -o wide 2>&1 || rc=1
  fi
  return "$rc"
}

cmd_env() {
  [[ -f $STATE/admin.kubeconfig && -x $STATE/bin/kubectl ]] || die "no cluster in $STATE; run: $0 up"
  printf 'export KUBECONFIG=%q\n' "$STATE/admin.kubeconfig"
  printf 'export EXECUTOR_K8S_STATE=%q\n' "$STATE"
  printf 'export EXECUTOR_K8S_KUBECTL=%q\n' "$(readlink -f "$STATE/bin")/kubectl"
}

main() {
  case ${1:-} in
    build) cmd_build ;;
    up) lock "$STATE" && cmd_up ;;
    down) lock "$STATE" && cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *)
      echo "usage: $0 build|up|down|status|env" >&2
      return 2
      ;;
  esac
}

# On one line, so bash has read the whole file before running (safe to edit while it runs).
main "$@"; exit
