variable "project" {
  type        = string
  description = "GCP project ID."
}

variable "region" {
  type        = string
  default     = "us-central1"
  description = "GCP region."
}

variable "zone" {
  type        = string
  default     = "us-central1-c"
  description = "GCP zone for the executors and the mirror."
}

variable "sourcegraph_external_url" {
  type        = string
  description = "URL of your Sourcegraph instance."
}

variable "token_secret" {
  type        = string
  default     = "sourcegraph-executor-token"
  description = "Secret Manager secret holding site config executors.accessToken."
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
