variable "vpc_id" {
  type        = string
  description = "ID of the VPC (networking module output vpc_id)."
}

variable "subnet_id" {
  type        = string
  description = "ID of the subnet (networking module output subnet_id)."
}

variable "machine_ami" {
  type        = string
  default     = ""
  description = "AMI ID. Empty: the latest official Debian 12 amd64 AMI."
}

variable "machine_type" {
  type        = string
  default     = "m5n.large"
  description = "EC2 instance type of the mirror."
}

variable "boot_disk_size" {
  type        = number
  default     = 32
  description = "Root volume size in GB."
  validation {
    condition     = var.boot_disk_size >= 10 && var.boot_disk_size <= 1024
    error_message = "boot_disk_size must be between 10 and 1024 GB."
  }
}

variable "disk_size" {
  type        = number
  default     = 64
  description = "Size in GB of the separate cache volume (it survives instance replacement)."
  validation {
    condition     = var.disk_size >= 10 && var.disk_size <= 16384
    error_message = "disk_size must be between 10 and 16384 GB."
  }
}

variable "disk_iops" {
  type        = number
  default     = 3000
  description = "gp3 IOPS of the cache volume."
  validation {
    condition     = var.disk_iops >= 3000 && var.disk_iops <= 16000
    error_message = "disk_iops must be between 3000 and 16000 (gp3 limits)."
  }
}

variable "disk_throughput" {
  type        = number
  default     = 125
  description = "gp3 throughput of the cache volume in MiB/s."
  validation {
    condition     = var.disk_throughput >= 125 && var.disk_throughput <= 1000
    error_message = "disk_throughput must be between 125 and 1000 MiB/s."
  }
}

variable "static_ip" {
  type        = string
  default     = "10.0.1.4"
  description = "Fixed private IP of the mirror inside the subnet."
  validation {
    condition     = can(cidrhost("${var.static_ip}/32", 0))
    error_message = "static_ip must be an IPv4 address."
  }
}

variable "ssh_access_cidr_range" {
  type        = string
  default     = ""
  description = "CIDR allowed to SSH to the mirror. Empty (default): no SSH; use SSM Session Manager."
  validation {
    condition     = var.ssh_access_cidr_range == "" || (can(cidrnetmask(var.ssh_access_cidr_range)) && var.ssh_access_cidr_range != "0.0.0.0/0")
    error_message = "ssh_access_cidr_range must be empty or an IPv4 CIDR other than 0.0.0.0/0 (SSH from anywhere is not allowed)."
  }
}

variable "http_access_cidr_range" {
  type        = string
  default     = "10.0.0.0/16"
  description = "CIDR allowed to pull from the mirror (port 5000)."
  validation {
    condition     = can(cidrnetmask(var.http_access_cidr_range)) && var.http_access_cidr_range != "0.0.0.0/0"
    error_message = "http_access_cidr_range must be an IPv4 CIDR other than 0.0.0.0/0."
  }
}

variable "instance_tag_prefix" {
  type        = string
  description = "The mirror is tagged executor_tag = <instance_tag_prefix>-docker-mirror."
}

variable "assign_public_ip" {
  type        = bool
  default     = false
  description = "Give the mirror a public IP (only when the subnet has no NAT)."
}

variable "resource_prefix" {
  type        = string
  default     = ""
  description = "An optional prefix for the names of all resources."
  validation {
    condition     = can(regex("^[a-z0-9-]{0,20}$", var.resource_prefix))
    error_message = "resource_prefix must be at most 20 characters of a-z, 0-9 and '-'."
  }
}

variable "permissions_boundary_arn" {
  type        = string
  default     = ""
  description = "Optional permissions boundary for the instance role."
}
