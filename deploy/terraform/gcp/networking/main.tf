locals {
  prefix = var.resource_prefix == "" ? "" : "${var.resource_prefix}-"
}

resource "google_compute_network" "default" {
  #checkov:skip=CKV2_GCP_18:The executors and docker-mirror modules attach their firewalls (IAP SSH, registry port) to this network; the implied deny-all ingress covers the rest.
  name                    = "${local.prefix}sourcegraph-executors"
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

resource "google_compute_subnetwork" "default" {
  name                     = "${local.prefix}sourcegraph-executors"
  network                  = google_compute_network.default.id
  region                   = var.region
  ip_cidr_range            = "10.0.1.0/24"
  private_ip_google_access = true
  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_router" "default" {
  count   = var.nat ? 1 : 0
  name    = "${local.prefix}sourcegraph-executors"
  network = google_compute_network.default.id
  region  = var.region
}

resource "google_compute_address" "nat" {
  count  = var.nat ? 1 : 0
  name   = "${local.prefix}sourcegraph-executors-nat"
  region = var.region
}

resource "google_compute_router_nat" "default" {
  count                              = var.nat ? 1 : 0
  name                               = "${local.prefix}sourcegraph-executors"
  router                             = google_compute_router.default[0].name
  region                             = var.region
  nat_ip_allocate_option             = "MANUAL_ONLY"
  nat_ips                            = [google_compute_address.nat[0].self_link]
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"
  min_ports_per_vm                   = var.nat_min_ports_per_vm
  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}
