#!/bin/bash
# Docker registry pull-through cache (registry:2 proxying Docker Hub) on the data volume.
set -euo pipefail
exec > >(tee -a /var/log/docker-mirror-bootstrap.log) 2>&1
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends docker.io

# The data volume is the only non-root NVMe/xvd disk; format it only if blank.
disk=""
for _ in $(seq 1 60); do
  disk="$(lsblk -dpno NAME,TYPE,MOUNTPOINT | awk '$2 == "disk" && $3 == "" {print $1}' | grep -v "$(findmnt -no SOURCE / | sed 's/p\?[0-9]*$//')" | head -n1 || true)"
  [ -n "$disk" ] && break
  sleep 5
done
[ -n "$disk" ] || { echo "docker-mirror: data disk not found" >&2; exit 1; }
blkid "$disk" >/dev/null || mkfs.ext4 -q -L registry "$disk"
mkdir -p /mnt/registry
grep -q 'LABEL=registry' /etc/fstab || echo 'LABEL=registry /mnt/registry ext4 defaults,nofail 0 2' >>/etc/fstab
mount -a

systemctl enable --now docker.service
docker rm -f registry 2>/dev/null || true
docker run -d --name registry --restart=always -p 5000:5000 \
  -v /mnt/registry:/var/lib/registry \
  -e REGISTRY_PROXY_REMOTEURL=https://registry-1.docker.io \
  registry:2
