output "network_id" {
  value       = google_compute_network.default.id
  description = "The executors' VPC network."
}

output "subnet_id" {
  value       = google_compute_subnetwork.default.id
  description = "The executors' subnetwork."
}

output "ip_cidr" {
  value       = google_compute_subnetwork.default.ip_cidr_range
  description = "The subnetwork's CIDR."
}

output "nat_ip" {
  value       = var.nat ? google_compute_address.nat[0].address : ""
  description = "The Cloud NAT's public IP, or empty."
}
