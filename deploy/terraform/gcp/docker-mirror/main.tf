locals {
  prefix = var.resource_prefix == "" ? "" : "${var.resource_prefix}-"
  tag    = "${var.instance_tag_prefix}-docker-mirror"
}

data "google_compute_image" "debian" {
  count   = var.machine_image == "" ? 1 : 0
  family  = "debian-12"
  project = "debian-cloud"
}

resource "google_service_account" "mirror" {
  account_id   = "${local.prefix}sg-executors-mirror"
  display_name = "Sourcegraph executors docker mirror"
}

resource "google_compute_address" "mirror" {
  name         = "${local.prefix}sourcegraph-executors-docker-mirror"
  subnetwork   = var.subnet_id
  address_type = "INTERNAL"
  region       = join("-", slice(split("-", var.zone), 0, 2))
}

# The cache survives VM replacement.
resource "google_compute_disk" "registry" {
  #checkov:skip=CKV_GCP_37:The disk holds public Docker Hub layers only; Google-managed encryption is enough.
  name   = "${local.prefix}sourcegraph-executors-registry-data"
  zone   = var.zone
  type   = "pd-ssd"
  size   = var.disk_size
  labels = var.labels
}

resource "google_compute_instance" "mirror" {
  #checkov:skip=CKV_GCP_40:access_config exists only when assign_public_ip = true (default false); checkov cannot evaluate the dynamic block.
  name                      = "${local.prefix}sourcegraph-executors-docker-mirror"
  zone                      = var.zone
  machine_type              = var.machine_type
  tags                      = [local.tag]
  labels                    = merge(var.labels, { executor_tag = local.tag })
  allow_stopping_for_update = true
  can_ip_forward            = false

  metadata = {
    block-project-ssh-keys = "true"
    enable-oslogin         = "TRUE"
    serial-port-enable     = "FALSE"
  }
  # Same bootstrap as on AWS; the data disk is attached as a second disk.
  metadata_startup_script = file("${path.module}/../../aws/docker-mirror/user-data.sh")

  boot_disk {
    #checkov:skip=CKV_GCP_38:Boot disk holds only the OS; Google-managed encryption is enough.
    initialize_params {
      image = var.machine_image != "" ? var.machine_image : data.google_compute_image.debian[0].self_link
      size  = var.boot_disk_size
      type  = "pd-ssd"
    }
  }

  attached_disk {
    source      = google_compute_disk.registry.id
    device_name = "registry-data"
  }

  network_interface {
    subnetwork = var.subnet_id
    network_ip = google_compute_address.mirror.address
    dynamic "access_config" {
      for_each = var.assign_public_ip ? ["external"] : []
      content {}
    }
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  service_account {
    email  = google_service_account.mirror.email
    scopes = ["logging-write", "monitoring-write"]
  }
}

resource "google_compute_firewall" "registry" {
  name          = "${local.prefix}sourcegraph-executors-docker-mirror"
  network       = var.network_id
  direction     = "INGRESS"
  source_ranges = var.http_access_cidr_ranges
  target_tags   = [local.tag]
  allow {
    protocol = "tcp"
    ports    = ["5000"]
  }
}

resource "google_compute_firewall" "iap_ssh" {
  name          = "${local.prefix}sourcegraph-executors-docker-mirror-iap-ssh"
  network       = var.network_id
  direction     = "INGRESS"
  source_ranges = ["35.235.240.0/20"] # Google's IAP TCP forwarding range
  target_tags   = [local.tag]
  allow {
    protocol = "tcp"
    ports    = ["22"]
  }
}
