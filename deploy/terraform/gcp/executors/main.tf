locals {
  prefix      = var.resource_prefix == "" ? "" : "${var.resource_prefix}-"
  queue_names = var.queue_names == null ? [] : sort(var.queue_names)
  # The worker labels custom.googleapis.com/executors/queue/size with queueName = the queue, or
  # in multi-queue mode the sorted names joined with "_" (as in Sourcegraph's modules).
  metric_queue_name = length(local.queue_names) > 0 ? join("_", local.queue_names) : var.queue_name
  mirror_hostport   = var.docker_registry_mirror == "" ? "" : replace(var.docker_registry_mirror, "/^https?:///", "")
}

data "google_client_config" "current" {}

data "google_compute_image" "debian" {
  count   = var.machine_image == "" ? 1 : 0
  family  = "debian-12"
  project = "debian-cloud"
}

# --- identity: logs and metrics, plus read access to the one token secret.

resource "google_service_account" "executor" {
  account_id   = "${local.prefix}sourcegraph-executor"
  display_name = "Sourcegraph executors"
}

resource "google_project_iam_member" "log_writer" {
  project = data.google_client_config.current.project
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.executor.email}"
}

resource "google_project_iam_member" "metric_writer" {
  project = data.google_client_config.current.project
  role    = "roles/monitoring.metricWriter"
  member  = "serviceAccount:${google_service_account.executor.email}"
}

resource "google_secret_manager_secret_iam_member" "token" {
  project   = data.google_client_config.current.project
  secret_id = var.sourcegraph_executor_proxy_password_secret
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.executor.email}"
}

# --- network: SSH only through Identity-Aware Proxy; nothing else inbound.

resource "google_compute_firewall" "iap_ssh" {
  name          = "${local.prefix}sourcegraph-executors-iap-ssh"
  network       = var.network_id
  direction     = "INGRESS"
  source_ranges = ["35.235.240.0/20"] # Google's IAP TCP forwarding range
  target_tags   = [var.instance_tag]
  allow {
    protocol = "tcp"
    ports    = ["22"]
  }
}

# --- instances

resource "google_compute_instance_template" "executor" {
  #checkov:skip=CKV_GCP_40:access_config exists only when assign_public_ip = true (default false); checkov cannot evaluate the dynamic block.
  name_prefix    = "${local.prefix}sourcegraph-executor-"
  machine_type   = var.machine_type
  tags           = [var.instance_tag]
  labels         = merge(var.labels, { executor_tag = var.instance_tag })
  can_ip_forward = false

  metadata = {
    block-project-ssh-keys = "true"
    enable-oslogin         = "TRUE"
    serial-port-enable     = "FALSE"
  }

  metadata_startup_script = templatefile("${path.module}/startup-script.sh.tpl", {
    package_url             = var.package_url
    package_sha256          = var.package_sha256
    project                 = data.google_client_config.current.project
    token_secret            = var.sourcegraph_executor_proxy_password_secret
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
  })

  # A powered-off executor (exit 0 after its job/time budget) stays off; the group recreates it.
  scheduling {
    automatic_restart           = false
    on_host_maintenance         = var.preemptible_machines ? "TERMINATE" : "MIGRATE"
    preemptible                 = var.preemptible_machines
    provisioning_model          = var.preemptible_machines ? "SPOT" : "STANDARD"
    instance_termination_action = var.preemptible_machines ? "DELETE" : null
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  disk {
    #checkov:skip=CKV_GCP_38:Boot disks are encrypted with Google-managed keys; a CSEK would have to be supplied at every instance creation by the autoscaler.
    source_image = var.machine_image != "" ? var.machine_image : data.google_compute_image.debian[0].self_link
    disk_type    = "pd-ssd"
    disk_size_gb = var.boot_disk_size
    boot         = true
    auto_delete  = true
  }

  network_interface {
    subnetwork = var.subnet_id
    dynamic "access_config" {
      for_each = var.assign_public_ip ? ["external"] : []
      content {}
    }
  }

  service_account {
    email  = google_service_account.executor.email
    scopes = ["cloud-platform"]
  }

  lifecycle {
    create_before_destroy = true
    precondition {
      condition     = (var.queue_name == "") != (length(local.queue_names) == 0)
      error_message = "Set exactly one of queue_name and queue_names."
    }
  }
}

resource "google_compute_instance_group_manager" "executor" {
  name               = "${local.prefix}sourcegraph-executors"
  zone               = var.zone
  base_instance_name = "${local.prefix}sourcegraph-executor"

  version {
    instance_template = google_compute_instance_template.executor.id
  }

  update_policy {
    type                  = "PROACTIVE"
    minimal_action        = "REPLACE"
    max_surge_percent     = 100
    max_unavailable_fixed = 0
  }

  lifecycle {
    # The autoscaler owns the size.
    ignore_changes = [target_size]
  }
}

# Autoscaling on the frontend's queue size, as Sourcegraph's module does: the Sourcegraph
# worker writes custom.googleapis.com/executors/queue/size every 5 s; with
# single_instance_assignment the target is CEIL(queue / jobs_per_instance_scaling) instances,
# clamped to [min_replicas, max_replicas].
resource "google_compute_autoscaler" "executor" {
  name   = "${local.prefix}sourcegraph-executors"
  zone   = var.zone
  target = google_compute_instance_group_manager.executor.id

  autoscaling_policy {
    min_replicas    = var.min_replicas
    max_replicas    = var.max_replicas
    cooldown_period = 300

    metric {
      name                       = "custom.googleapis.com/executors/queue/size"
      single_instance_assignment = var.jobs_per_instance_scaling
      filter                     = "resource.type = \"global\" AND metric.labels.queueName = \"${local.metric_queue_name}\" AND metric.labels.environment = \"${var.metrics_environment_label}\""
    }
  }
}
