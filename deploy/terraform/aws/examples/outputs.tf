output "nat_ip" {
  value       = module.networking.nat_ip
  description = "Egress IP of the executors (allow it in front of Sourcegraph if needed)."
}

output "autoscaling_group_name" {
  value       = module.executors.autoscaling_group_name
  description = "The executors' autoscaling group."
}
