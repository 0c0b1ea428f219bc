locals {
  prefix = var.resource_prefix == "" ? "" : "${var.resource_prefix}-"
}

data "aws_ami" "debian" {
  count       = var.machine_ami == "" ? 1 : 0
  most_recent = true
  owners      = ["136693071363"] # Debian's official AWS account
  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }
}

data "aws_subnet" "default" {
  id = var.subnet_id
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "mirror" {
  name                 = "${local.prefix}sourcegraph-executors-docker-mirror"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.permissions_boundary_arn == "" ? null : var.permissions_boundary_arn
}

resource "aws_iam_role_policy_attachment" "ssm_core" {
  role       = aws_iam_role.mirror.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "mirror" {
  name = "${local.prefix}sourcegraph-executors-docker-mirror"
  role = aws_iam_role.mirror.name
}

resource "aws_security_group" "mirror" {
  name        = "${local.prefix}sourcegraph-executors-docker-mirror"
  description = "Docker registry mirror: port 5000 from the executors' range only"
  vpc_id      = var.vpc_id

  ingress {
    description = "Registry pulls from executors"
    from_port   = 5000
    to_port     = 5000
    protocol    = "tcp"
    cidr_blocks = [var.http_access_cidr_range]
  }

  egress {
    #checkov:skip=CKV_AWS_382:The pull-through cache must reach Docker Hub's registry and CDN, whose addresses are not fixed.
    description = "Docker Hub and its CDN"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  count             = var.ssh_access_cidr_range == "" ? 0 : 1
  security_group_id = aws_security_group.mirror.id
  description       = "SSH from the operators' range"
  cidr_ipv4         = var.ssh_access_cidr_range
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
}

# The static IP lives on its own interface so no other instance can claim it.
resource "aws_network_interface" "static" {
  subnet_id       = var.subnet_id
  private_ips     = [var.static_ip]
  security_groups = [aws_security_group.mirror.id]
}

resource "aws_instance" "mirror" {
  ami                  = var.machine_ami != "" ? var.machine_ami : data.aws_ami.debian[0].id
  instance_type        = var.machine_type
  iam_instance_profile = aws_iam_instance_profile.mirror.name
  monitoring           = true
  ebs_optimized        = true
  user_data            = file("${path.module}/user-data.sh")

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  network_interface {
    network_interface_id = aws_network_interface.static.id
    device_index         = 0
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = var.boot_disk_size
    encrypted   = true
  }

  tags = {
    Name         = "${local.prefix}sourcegraph-executors-docker-mirror"
    executor_tag = "${var.instance_tag_prefix}-docker-mirror"
  }
}

# The cache survives instance replacement.
resource "aws_ebs_volume" "registry" {
  #checkov:skip=CKV_AWS_189:Holds public Docker Hub layers only; the AWS-managed EBS key (encrypted = true) is enough.
  availability_zone = data.aws_subnet.default.availability_zone
  type              = "gp3"
  size              = var.disk_size
  iops              = var.disk_iops
  throughput        = var.disk_throughput
  encrypted         = true
  tags              = { Name = "${local.prefix}sourcegraph-executors-docker-mirror" }
}

resource "aws_volume_attachment" "registry" {
  device_name = "/dev/sdh"
  volume_id   = aws_ebs_volume.registry.id
  instance_id = aws_instance.mirror.id
}

resource "aws_eip" "mirror" {
  #checkov:skip=CKV2_AWS_19:Attached to the static ENI, which is the mirror instance's primary interface (device_index 0).
  count             = var.assign_public_ip ? 1 : 0
  domain            = "vpc"
  network_interface = aws_network_interface.static.id
}
