output "nat_ip" {
  value       = module.networking.nat_ip
  description = "Egress IP of the executors."
}

output "instance_group_manager" {
  value       = module.executors.instance_group_manager
  description = "The executors' managed instance group."
}
