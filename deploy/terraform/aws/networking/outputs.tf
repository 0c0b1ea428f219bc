output "vpc_id" {
  value       = aws_vpc.default.id
  description = "The VPC of the executors."
}

output "subnet_id" {
  value       = aws_subnet.default.id
  description = "The subnet of the executors and the docker mirror (private when nat = true)."
}

output "ip_cidr" {
  value       = aws_subnet.default.cidr_block
  description = "The CIDR of that subnet."
}

output "nat_ip" {
  value       = var.nat ? aws_eip.nat[0].public_ip : ""
  description = "The NAT gateway's public IP (allow it on the Sourcegraph side), or empty."
}
