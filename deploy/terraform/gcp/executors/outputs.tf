output "instance_group_manager" {
  value       = google_compute_instance_group_manager.executor.name
  description = "Name of the executors' managed instance group."
}

output "service_account_email" {
  value       = google_service_account.executor.email
  description = "Service account of the executor VMs."
}
