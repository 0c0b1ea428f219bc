#!/bin/bash
# Executor instance bootstrap (AWS), rendered by Terraform. Runs once, on first boot.
# Points docker at the registry mirror (when one is given), installs docker + the
# sourcegraph-executor-py package, writes /etc/executor/executor.env
# with the token read from SSM Parameter Store, firewalls step containers, starts the unit.
set -euo pipefail
exec > >(tee -a /var/log/executor-bootstrap.log) 2>&1

%{ if docker_registry_mirror != "" ~}
# The host's Docker pulls through the docker-mirror module's registry; the executor only checks
# that `docker info` lists it. Written before docker.io is installed so its first start reads
# it, and docker is restarted below for a boot where it was already running.
mkdir -p /etc/docker
cat >/etc/docker/daemon.json <<'JSON'
${jsonencode({ "registry-mirrors" = [docker_registry_mirror] })}
JSON
%{ endif ~}

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends docker.io git python3.11 iptables awscli ca-certificates curl

curl -fsSL --retry 5 -o /tmp/executor.deb '${package_url}'
echo '${package_sha256}  /tmp/executor.deb' | sha256sum -c -
apt-get install -y -q /tmp/executor.deb
rm -f /tmp/executor.deb
%{ if docker_registry_mirror != "" ~}
systemctl restart docker.service
%{ endif ~}

# The token never appears in user data or Terraform state: the instance role reads it.
umask 027
aws ssm get-parameter --region '${region}' --with-decryption \
  --name '${token_parameter}' --query Parameter.Value --output text >/etc/executor/token
chown root:executor /etc/executor/token
chmod 0640 /etc/executor/token

umask 077
cat >/etc/executor/executor.env <<'ENV'
EXECUTOR_FRONTEND_URL=${frontend_url}
EXECUTOR_FRONTEND_PASSWORD_FILE=/etc/executor/token
%{ if queue_names != "" ~}
EXECUTOR_QUEUE_NAMES=${queue_names}
%{ else ~}
EXECUTOR_QUEUE_NAME=${queue_name}
%{ endif ~}
EXECUTOR_MAXIMUM_NUM_JOBS=${maximum_num_jobs}
EXECUTOR_MAXIMUM_RUNTIME_PER_JOB=${maximum_runtime_per_job}
EXECUTOR_JOB_NUM_CPUS=${job_num_cpus}
EXECUTOR_JOB_MEMORY=${job_memory}
EXECUTOR_NUM_TOTAL_JOBS=${num_total_jobs}
EXECUTOR_MAX_ACTIVE_TIME=${max_active_time}
EXECUTOR_DOCKER_REGISTRY_MIRROR_URL=${docker_registry_mirror}
EXECUTOR_METRICS_PORT=6060
EXECUTOR_RECYCLE_ON_EXIT=true
EXECUTOR_IPTABLES_RULES=true
EXECUTOR_IPTABLES_ALLOW=${iptables_allow}
ENV
chmod 0600 /etc/executor/executor.env

# The unit runs executor-iptables.sh before every start; run it now too so the rules exist
# before docker starts any container.
set -a; . /etc/executor/executor.env; set +a
/usr/libexec/executor/executor-iptables.sh

systemctl enable --now docker.service
systemctl enable --now executor.service
