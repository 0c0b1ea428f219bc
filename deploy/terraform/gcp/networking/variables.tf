variable "region" {
  type        = string
  description = "Region of the subnetwork and the NAT."
}

variable "nat" {
  type        = bool
  default     = true
  description = "Create a Cloud NAT so executors need no public IP (recommended)."
}

variable "nat_min_ports_per_vm" {
  type        = number
  default     = 1024
  description = "Minimum NAT ports per VM (many parallel image pulls need many ports)."
  validation {
    condition     = var.nat_min_ports_per_vm >= 64 && var.nat_min_ports_per_vm <= 65536
    error_message = "nat_min_ports_per_vm must be between 64 and 65536."
  }
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
