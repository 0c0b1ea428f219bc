variable "zone" {
  type        = string
  description = "Zone of the mirror VM and its disk."
}

variable "network_id" {
  type        = string
  description = "VPC network (networking module output network_id)."
}

variable "subnet_id" {
  type        = string
  description = "Subnetwork (networking module output subnet_id)."
}

variable "machine_image" {
  type        = string
  default     = ""
  description = "Boot image. Empty: the latest debian-cloud/debian-12 image."
}

variable "machine_type" {
  type        = string
  default     = "n2-standard-2"
  description = "Machine type of the mirror."
}

variable "boot_disk_size" {
  type        = number
  default     = 10
  description = "Boot disk size in GB."
  validation {
    condition     = var.boot_disk_size >= 10 && var.boot_disk_size <= 1024
    error_message = "boot_disk_size must be between 10 and 1024 GB."
  }
}

variable "disk_size" {
  type        = number
  default     = 64
  description = "Size in GB of the separate cache disk (it survives VM replacement)."
  validation {
    condition     = var.disk_size >= 10 && var.disk_size <= 65536
    error_message = "disk_size must be between 10 and 65536 GB."
  }
}

variable "http_access_cidr_ranges" {
  type        = list(string)
  default     = ["10.0.0.0/16"]
  description = "CIDRs allowed to pull from the mirror (port 5000)."
  validation {
    condition     = alltrue([for c in var.http_access_cidr_ranges : can(cidrnetmask(c)) && c != "0.0.0.0/0"])
    error_message = "http_access_cidr_ranges must be IPv4 CIDRs other than 0.0.0.0/0."
  }
}

variable "instance_tag_prefix" {
  type        = string
  description = "The mirror gets the network tag <instance_tag_prefix>-docker-mirror."
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,40}$", var.instance_tag_prefix))
    error_message = "instance_tag_prefix must start with a lowercase letter, then up to 40 of a-z, 0-9 and '-'."
  }
}

variable "assign_public_ip" {
  type        = bool
  default     = false
  description = "Give the mirror an external IP (only when the network has no Cloud NAT)."
}

variable "resource_prefix" {
  type        = string
  default     = ""
  description = "An optional prefix for the names of all resources; must start with a lowercase letter."
  validation {
    condition     = can(regex("^([a-z][a-z0-9-]{0,19})?$", var.resource_prefix))
    error_message = "resource_prefix must be empty or start with a lowercase letter, at most 20 characters of a-z, 0-9 and '-'."
  }
}

variable "labels" {
  type        = map(string)
  default     = {}
  description = "Labels added to the VM and its disk."
}
