#!/bin/sh
# Firewall for step containers on an executor host: block the cloud metadata service and
# private ranges from the docker bridge, so job code cannot steal the instance's credentials
# or reach internal services. Run by executor.service (ExecStartPre, as root) and by the
# Terraform user data. Idempotent: it rebuilds its own chain on every run.
#
# Off unless EXECUTOR_IPTABLES_RULES=true (the rules apply to *every* container on the bridge,
# so a package install on a shared workstation must not change them silently).
#
# Env: EXECUTOR_IPTABLES_RULES   true to install the rules (Terraform sets it)
#      EXECUTOR_IPTABLES_BRIDGE  bridge interface of step containers (default docker0)
#      EXECUTOR_IPTABLES_ALLOW   space-separated ip:port exceptions, e.g. the docker mirror
#                                "10.0.1.4:5000" (Terraform sets it when a mirror exists)
set -eu

case "${EXECUTOR_IPTABLES_RULES:-false}" in
  1 | t | T | true | TRUE | True) ;;
  *) exit 0 ;;
esac

bridge="${EXECUTOR_IPTABLES_BRIDGE:-docker0}"
chain=EXECUTOR-ISOLATION
ipt() { iptables -w 5 "$@"; }

command -v iptables >/dev/null 2>&1 || {
  echo "executor-iptables: iptables not found; cannot isolate step containers" >&2
  exit 1
}

# DOCKER-USER is evaluated by docker before its own rules; create it if docker has not yet.
ipt -N DOCKER-USER 2>/dev/null || true
ipt -N "${chain}" 2>/dev/null || true
ipt -F "${chain}"

# Replies to connections the host made (e.g. published ports) stay allowed.
ipt -A "${chain}" -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
# DNS goes through docker's resolver or the host's; keep it working.
ipt -A "${chain}" -p udp --dport 53 -j RETURN
ipt -A "${chain}" -p tcp --dport 53 -j RETURN
for hostport in ${EXECUTOR_IPTABLES_ALLOW:-}; do
  ipt -A "${chain}" -p tcp -d "${hostport%:*}" --dport "${hostport##*:}" -j RETURN
done
# Link-local covers 169.254.169.254 (AWS/GCP/Azure metadata) and fd00:ec2::254 has no v4 path.
for cidr in 169.254.0.0/16 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 100.64.0.0/10; do
  ipt -A "${chain}" -d "${cidr}" -j REJECT --reject-with icmp-net-prohibited
done
ipt -A "${chain}" -j RETURN

# Hook the chain for traffic from the bridge, once.
ipt -C DOCKER-USER -i "${bridge}" -j "${chain}" 2>/dev/null \
  || ipt -I DOCKER-USER 1 -i "${bridge}" -j "${chain}"
# Traffic to the host itself (INPUT), e.g. a metadata proxy or services bound on the bridge IP.
ipt -C INPUT -i "${bridge}" -j "${chain}" 2>/dev/null \
  || ipt -I INPUT 1 -i "${bridge}" -j "${chain}"

echo "executor-iptables: ${chain} installed on ${bridge}" >&2
