#!/bin/sh
# Egress rules for step containers on an executor host: the step network, and firewall rules
# so job code cannot reach the cloud metadata service (the instance's credentials), the host's
# own services, or private and link-local addresses; the frontend's address stays reachable.
# Run by executor.service (ExecStartPre, as root: the deb/rpm unit turns both parts on) and by
# the Terraform user data; on the image route, run it on the host (docs/security.md).
# Idempotent: the network is created once, the chains are rebuilt on every run.
#
# Env: EXECUTOR_STEP_NETWORK     docker network of step containers, created here when missing
#                                (bridge driver, no inter-container traffic); empty: Docker's
#                                default bridge (docker0). The daemon runs steps on it.
#      EXECUTOR_IPTABLES_RULES   true to install the rules (off unless set: the rules apply to
#                                *every* container on the bridge)
#      EXECUTOR_IPTABLES_BRIDGE  bridge interface to guard (default: the step network's bridge,
#                                else docker0)
#      EXECUTOR_IPTABLES_ALLOW   space-separated ip:port exceptions, e.g. the docker mirror
#                                "10.0.1.4:5000" (Terraform sets it when a mirror exists)
#      EXECUTOR_FRONTEND_URL     the frontend: its addresses and port are allowed (steps such as
#                                `src lsif upload` talk to it), even when private
set -eu

truthy() {
  case "${1:-}" in
    1 | t | T | true | TRUE | True) return 0 ;;
    *) return 1 ;;
  esac
}
say() { echo "executor-iptables: $*" >&2; }

network="${EXECUTOR_STEP_NETWORK:-}"
bridge="${EXECUTOR_IPTABLES_BRIDGE:-}"

# --- 1. the step network ----------------------------------------------------------------------
if [ -n "${network}" ]; then
  command -v docker >/dev/null 2>&1 || {
    say "docker not found; cannot create the step network ${network}"
    exit 1
  }
  if ! docker network inspect "${network}" >/dev/null 2>&1; then
    # A Linux interface name has at most 15 characters.
    name="${bridge:-$(printf '%s' "${network}" | cut -c1-15)}"
    docker network create --driver bridge --label executor.step-network=true \
      --opt com.docker.network.bridge.name="${name}" \
      --opt com.docker.network.bridge.enable_icc=false "${network}" >/dev/null \
      || docker network inspect "${network}" >/dev/null 2>&1 # created meanwhile: fine
    say "created docker network ${network} (bridge ${name})"
  fi
  if [ -z "${bridge}" ]; then
    format='{{index .Options "com.docker.network.bridge.name"}}'
    bridge="$(docker network inspect --format "${format}" "${network}")"
    [ -n "${bridge}" ] || bridge="br-$(docker network inspect --format '{{.Id}}' "${network}" | cut -c1-12)"
  fi
fi
bridge="${bridge:-docker0}"

truthy "${EXECUTOR_IPTABLES_RULES:-false}" || exit 0

# --- 2. the rules -----------------------------------------------------------------------------
command -v iptables >/dev/null 2>&1 || {
  say "iptables not found; cannot isolate step containers"
  exit 1
}
ipt() { iptables -w 5 "$@"; }
forward=EXECUTOR-ISOLATION
input=EXECUTOR-ISOLATION-INPUT

# Allowed destinations as "ip port" lines: the exceptions, then the frontend's addresses.
allowed="$(for hostport in ${EXECUTOR_IPTABLES_ALLOW:-}; do echo "${hostport%:*} ${hostport##*:}"; done)"
url="${EXECUTOR_FRONTEND_URL:-}"
if [ -n "${url}" ]; then
  rest="${url#*://}"
  authority="${rest%%/*}"
  authority="${authority##*@}"
  host="${authority%:*}"
  port="${authority##*:}"
  if [ "${host}" = "${authority}" ]; then
    case "${url}" in https:*) port=443 ;; *) port=80 ;; esac
  fi
  addresses="$(getent ahostsv4 "${host}" 2>/dev/null | awk '{print $1}' | sort -u || true)"
  [ -n "${addresses}" ] || say "warning: cannot resolve the frontend host ${host}; not allowed"
  for address in ${addresses}; do
    allowed="${allowed}
${address} ${port}"
  done
fi

# Both chains start the same way: replies, DNS, the allowed destinations.
for chain in "${forward}" "${input}"; do
  ipt -N "${chain}" 2>/dev/null || true
  ipt -F "${chain}"
  ipt -A "${chain}" -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
  ipt -A "${chain}" -p udp --dport 53 -j RETURN
  ipt -A "${chain}" -p tcp --dport 53 -j RETURN
  echo "${allowed}" | while read -r address port; do
    [ -n "${address}" ] || continue
    ipt -A "${chain}" -p tcp -d "${address}" --dport "${port}" -j RETURN
  done
done

# Forwarded traffic: the host's own addresses on any interface, link-local (169.254.169.254,
# the AWS/GCP/Azure metadata service), RFC1918, CGNAT and loopback-ish ranges are refused.
own="$(ip -4 -o addr show 2>/dev/null | awk '{split($4, a, "/"); print a[1]}' || true)"
[ -n "${own}" ] || own="$(hostname -I 2>/dev/null || true)"
for address in ${own}; do
  case "${address}" in *.*.*.*) ipt -A "${forward}" -d "${address}" -j REJECT --reject-with icmp-net-prohibited ;; esac
done
for cidr in 169.254.0.0/16 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 100.64.0.0/10 127.0.0.0/8 0.0.0.0/8; do
  ipt -A "${forward}" -d "${cidr}" -j REJECT --reject-with icmp-net-prohibited
done
ipt -A "${forward}" -j RETURN
# Traffic to the host itself (a metadata proxy, the daemon's health or metrics port, sshd, any
# service bound on the bridge's address): nothing but the above.
ipt -A "${input}" -p tcp -j REJECT --reject-with tcp-reset
ipt -A "${input}" -j REJECT --reject-with icmp-port-unreachable

# DOCKER-USER is evaluated by docker before its own rules; create it if docker has not yet.
ipt -N DOCKER-USER 2>/dev/null || true
ipt -C DOCKER-USER -i "${bridge}" -j "${forward}" 2>/dev/null \
  || ipt -I DOCKER-USER 1 -i "${bridge}" -j "${forward}"
ipt -D INPUT -i "${bridge}" -j "${forward}" 2>/dev/null || true # the hook of older versions
ipt -C INPUT -i "${bridge}" -j "${input}" 2>/dev/null \
  || ipt -I INPUT 1 -i "${bridge}" -j "${input}"

say "${forward} and ${input} installed on ${bridge}"
