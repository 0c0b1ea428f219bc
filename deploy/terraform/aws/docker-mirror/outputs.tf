output "ip_address" {
  value       = var.static_ip
  description = "Private IP of the mirror."
}

output "url" {
  value       = "http://${var.static_ip}:5000"
  description = "Value for the executors module's docker_registry_mirror."
}
