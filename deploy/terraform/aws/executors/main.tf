locals {
  prefix      = var.resource_prefix == "" ? "" : "${var.resource_prefix}-"
  queue_names = var.queue_names == null ? [] : sort(var.queue_names)
  # The worker publishes src_executors_queue_size with queueName = the queue, or in multi-queue
  # mode the sorted names joined with "_" (same convention as Sourcegraph's modules).
  metric_queue_name = length(local.queue_names) > 0 ? join("_", local.queue_names) : var.queue_name
  autoscaling       = var.min_replicas != var.max_replicas
  mirror_hostport   = var.docker_registry_mirror == "" ? "" : replace(var.docker_registry_mirror, "/^https?:///", "")
}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_ami" "debian" {
  count       = var.machine_image == "" ? 1 : 0
  most_recent = true
  owners      = ["136693071363"] # Debian's official AWS account
  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }
}

# --- identity: SSM Session Manager instead of SSH, and read access to the one token parameter.

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "executor" {
  name                 = "${local.prefix}sourcegraph-executor"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.permissions_boundary_arn == "" ? null : var.permissions_boundary_arn
}

resource "aws_iam_role_policy_attachment" "ssm_core" {
  role       = aws_iam_role.executor.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

data "aws_iam_policy_document" "token" {
  statement {
    actions   = ["ssm:GetParameter"]
    resources = ["arn:aws:ssm:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:parameter/${trimprefix(var.sourcegraph_executor_proxy_password_ssm_parameter, "/")}"]
  }
  dynamic "statement" {
    for_each = var.ssm_kms_key_arn == "" ? [] : [var.ssm_kms_key_arn]
    content {
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "token" {
  name   = "read-executor-token"
  role   = aws_iam_role.executor.id
  policy = data.aws_iam_policy_document.token.json
}

resource "aws_iam_instance_profile" "executor" {
  name = "${local.prefix}sourcegraph-executor"
  role = aws_iam_role.executor.name
}

# --- network: nothing inbound except optional SSH from a given range.

resource "aws_security_group" "executor" {
  name        = "${local.prefix}sourcegraph-executor"
  description = "Sourcegraph executors: outbound only (optional SSH from ssh_access_cidr_range)"
  vpc_id      = var.vpc_id

  egress {
    #checkov:skip=CKV_AWS_382:Executors must reach the Sourcegraph frontend, package mirrors and arbitrary image registries; step containers are firewalled on the host instead (executor-iptables.sh).
    description      = "All outbound: frontend, git hosts via the frontend, image registries"
    from_port        = 0
    to_port          = 0
    protocol         = "-1"
    cidr_blocks      = ["0.0.0.0/0"]
    ipv6_cidr_blocks = ["::/0"]
  }
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  count             = var.ssh_access_cidr_range == "" ? 0 : 1
  security_group_id = aws_security_group.executor.id
  description       = "SSH from the operators' range"
  cidr_ipv4         = var.ssh_access_cidr_range
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
}

# --- instances

resource "aws_launch_template" "executor" {
  name_prefix            = "${local.prefix}sourcegraph-executor-"
  image_id               = var.machine_image != "" ? var.machine_image : data.aws_ami.debian[0].id
  instance_type          = var.machine_type
  update_default_version = true
  ebs_optimized          = true
  # The executor exits 0 after num_total_jobs / max_active_time and the unit powers the host
  # off: terminate, and the group replaces the instance if it is still needed.
  instance_initiated_shutdown_behavior = "terminate"

  user_data = base64encode(templatefile("${path.module}/user-data.sh.tpl", {
    package_url             = var.package_url
    package_sha256          = var.package_sha256
    region                  = data.aws_region.current.name
    token_parameter         = var.sourcegraph_executor_proxy_password_ssm_parameter
    frontend_url            = var.sourcegraph_external_url
    queue_name              = var.queue_name
    queue_names             = join(",", local.queue_names)
    maximum_num_jobs        = var.maximum_num_jobs
    maximum_runtime_per_job = var.maximum_runtime_per_job
    job_num_cpus            = var.job_num_cpus
    job_memory              = var.job_memory
    num_total_jobs          = var.num_total_jobs
    max_active_time         = var.max_active_time
    docker_registry_mirror  = var.docker_registry_mirror
    iptables_allow          = local.mirror_hostport
  }))

  # IMDSv2 only, and a hop limit of 1 so that containers (one hop further) cannot reach it even
  # if the host firewall were missing.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  iam_instance_profile {
    arn = aws_iam_instance_profile.executor.arn
  }

  monitoring {
    enabled = true
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_type           = "gp3"
      volume_size           = var.boot_disk_size
      iops                  = var.boot_disk_iops
      throughput            = var.boot_disk_throughput
      encrypted             = true
      delete_on_termination = true
    }
  }

  network_interfaces {
    associate_public_ip_address = var.assign_public_ip
    security_groups             = [aws_security_group.executor.id]
    delete_on_termination       = true
  }

  dynamic "instance_market_options" {
    for_each = var.preemptible_machines ? ["spot"] : []
    content {
      market_type = "spot"
      spot_options {
        spot_instance_type             = "one-time"
        instance_interruption_behavior = "terminate"
      }
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags = {
      Name         = "${local.prefix}sourcegraph-executor"
      executor_tag = var.instance_tag
    }
  }

  lifecycle {
    create_before_destroy = true
    precondition {
      condition     = (var.queue_name == "") != (length(local.queue_names) == 0)
      error_message = "Set exactly one of queue_name and queue_names."
    }
  }
}

resource "aws_autoscaling_group" "executor" {
  name                      = "${local.prefix}sourcegraph-executors"
  min_size                  = var.min_replicas
  max_size                  = var.max_replicas
  vpc_zone_identifier       = [var.subnet_id]
  health_check_type         = "EC2"
  health_check_grace_period = 300
  enabled_metrics           = ["GroupInServiceInstances", "GroupTotalInstances", "GroupDesiredCapacity"]

  launch_template {
    id      = aws_launch_template.executor.id
    version = aws_launch_template.executor.latest_version
  }

  # Replace instances when the template changes; executors drain on SIGTERM (up to 35 min).
  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 50
      instance_warmup        = 300
    }
  }

  tag {
    key                 = "executor_tag"
    value               = var.instance_tag
    propagate_at_launch = true
  }

  tag {
    key                 = "Name"
    value               = "${local.prefix}sourcegraph-executor"
    propagate_at_launch = true
  }

  lifecycle {
    # Scaling policies own the desired capacity.
    ignore_changes = [desired_capacity]
  }
}

# --- autoscaling on the frontend's queue size, as Sourcegraph's module does: the Sourcegraph
# worker publishes src_executors_queue_size (namespace sourcegraph-executor) every 5 s; the
# group moves one instance at a time towards CEIL(queue / jobs_per_instance_scaling), bounded
# by min/max. Scale-in happens mostly by recycling: instances exit 0 and are not replaced.

resource "aws_autoscaling_policy" "scale_out" {
  count                  = local.autoscaling ? 1 : 0
  name                   = "${local.prefix}sourcegraph-executors-scale-out"
  autoscaling_group_name = aws_autoscaling_group.executor.name
  policy_type            = "SimpleScaling"
  adjustment_type        = "ChangeInCapacity"
  scaling_adjustment     = 1
  cooldown               = 60
}

resource "aws_autoscaling_policy" "scale_in" {
  count                  = local.autoscaling ? 1 : 0
  name                   = "${local.prefix}sourcegraph-executors-scale-in"
  autoscaling_group_name = aws_autoscaling_group.executor.name
  policy_type            = "SimpleScaling"
  adjustment_type        = "ChangeInCapacity"
  scaling_adjustment     = -1
  cooldown               = 300
}

resource "aws_cloudwatch_metric_alarm" "scale" {
  for_each = local.autoscaling ? {
    out = { comparison = "GreaterThanThreshold", policy = aws_autoscaling_policy.scale_out[0].arn }
    in  = { comparison = "LessThanThreshold", policy = aws_autoscaling_policy.scale_in[0].arn }
  } : {}

  alarm_name          = "${local.prefix}sourcegraph-executors-scale-${each.key}"
  alarm_description   = "CEIL(src_executors_queue_size / ${var.jobs_per_instance_scaling}) - instances"
  comparison_operator = each.value.comparison
  evaluation_periods  = 1
  threshold           = 0
  alarm_actions       = [each.value.policy]

  metric_query {
    id          = "desired"
    expression  = "CEIL(queueSize / ${var.jobs_per_instance_scaling}) - instanceCount"
    label       = "Instances missing (+) or extra (-)"
    return_data = true
  }

  metric_query {
    id = "queueSize"
    metric {
      namespace   = "sourcegraph-executor"
      metric_name = "src_executors_queue_size"
      period      = 60
      stat        = "Maximum"
      dimensions = {
        queueName   = local.metric_queue_name
        environment = var.metrics_environment_label
      }
    }
  }

  metric_query {
    id = "instanceCount"
    metric {
      namespace   = "AWS/AutoScaling"
      metric_name = "GroupTotalInstances"
      period      = 60
      stat        = "Maximum"
      dimensions = {
        AutoScalingGroupName = aws_autoscaling_group.executor.name
      }
    }
  }
}
