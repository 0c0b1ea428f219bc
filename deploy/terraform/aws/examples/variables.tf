variable "region" {
  type        = string
  default     = "us-west-2"
  description = "AWS region."
}

variable "availability_zone" {
  type        = string
  default     = "us-west-2a"
  description = "Availability zone for the network, executors and mirror."
}

variable "sourcegraph_external_url" {
  type        = string
  description = "URL of your Sourcegraph instance."
}

variable "token_ssm_parameter" {
  type        = string
  default     = "/sourcegraph/executor-token"
  description = "SecureString SSM parameter holding site config executors.accessToken."
}

variable "package_url" {
  type        = string
  description = "HTTPS URL of the sourcegraph-executor-py .deb."
}

variable "package_sha256" {
  type        = string
  description = "SHA-256 of the .deb."
}

variable "metrics_environment_label" {
  type        = string
  default     = "prod"
  description = "The Sourcegraph worker's EXECUTOR_METRIC_ENVIRONMENT_LABEL."
}
