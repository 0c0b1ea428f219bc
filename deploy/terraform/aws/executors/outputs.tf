output "autoscaling_group_name" {
  value       = aws_autoscaling_group.executor.name
  description = "Name of the executors' autoscaling group."
}

output "security_group_id" {
  value       = aws_security_group.executor.id
  description = "Security group of the executors (allow it on the docker mirror)."
}

output "instance_role_arn" {
  value       = aws_iam_role.executor.arn
  description = "IAM role of the executor instances."
}
