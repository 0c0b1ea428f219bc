output "ip_address" {
  value       = google_compute_address.mirror.address
  description = "Private IP of the mirror."
}

output "url" {
  value       = "http://${google_compute_address.mirror.address}:5000"
  description = "Value for the executors module's docker_registry_mirror."
}
