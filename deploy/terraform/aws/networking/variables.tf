variable "availability_zone" {
  type        = string
  description = "The availability zone to create the network in."
}

variable "nat" {
  type        = bool
  default     = true
  description = "Put executors in a private subnet behind a NAT gateway (recommended; executors need no inbound access)."
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
