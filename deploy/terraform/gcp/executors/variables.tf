# Names follow sourcegraph/terraform-google-executors' modules/executors where the meaning is
# the same. Differences: the access token comes from Secret Manager, not a plain variable; the
# package is installed at boot from package_url; SSH only through IAP.

variable "zone" {
  type        = string
  description = "Zone of the instance group."
}

variable "network_id" {
  type        = string
  description = "VPC network (networking module output network_id)."
}

variable "subnet_id" {
  type        = string
  description = "Subnetwork (networking module output subnet_id)."
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

variable "machine_image" {
  type        = string
  default     = ""
  description = "Boot image. Empty: the latest debian-cloud/debian-12 image."
}

variable "machine_type" {
  type        = string
  default     = "c2-standard-8"
  description = "Machine type (8 vCPU / 32 GB: two jobs at the default 4 CPU / 12G)."
}

variable "sourcegraph_executor_proxy_password_secret" {
  type        = string
  description = "Secret Manager secret ID (in this project) holding the executor access token (site config executors.accessToken)."
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.sourcegraph_executor_proxy_password_secret))
    error_message = "sourcegraph_executor_proxy_password_secret must be a Secret Manager secret ID (letters, digits, '_' and '-')."
  }
}

variable "jobs_per_instance_scaling" {
  type        = number
  default     = 20
  description = "One instance per this many queued jobs (custom.googleapis.com/executors/queue/size)."
  validation {
    condition     = var.jobs_per_instance_scaling >= 1
    error_message = "jobs_per_instance_scaling must be at least 1."
  }
}

variable "labels" {
  type        = map(string)
  default     = {}
  description = "Labels added to every instance."
}

variable "boot_disk_size" {
  type        = number
  default     = 100
  description = "Boot disk size in GB (workspaces and images live there)."
  validation {
    condition     = var.boot_disk_size >= 20 && var.boot_disk_size <= 65536
    error_message = "boot_disk_size must be between 20 and 65536 GB."
  }
}

variable "preemptible_machines" {
  type        = bool
  default     = false
  description = "Use preemptible (spot) VMs (jobs on a reclaimed instance are retried by Sourcegraph)."
}

variable "instance_tag" {
  type        = string
  description = "Network tag and executor_tag label of every instance, used to find them."
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,62}$", var.instance_tag))
    error_message = "instance_tag must be a GCP label value/network tag: a lowercase letter, then up to 62 of a-z, 0-9 and '-'."
  }
}

variable "sourcegraph_external_url" {
  type        = string
  description = "The externally accessible URL of the Sourcegraph instance (EXECUTOR_FRONTEND_URL)."
  validation {
    condition     = can(regex("^https?://[^/\\s]+/?$", var.sourcegraph_external_url))
    error_message = "sourcegraph_external_url must look like https://sourcegraph.example.com (scheme://host[:port])."
  }
}

variable "queue_name" {
  type        = string
  default     = ""
  description = "The queue to process (batches or codeintel). Exactly one of queue_name and queue_names."
  validation {
    condition     = contains(["", "batches", "codeintel"], var.queue_name)
    error_message = "queue_name must be \"batches\", \"codeintel\" or empty."
  }
}

variable "queue_names" {
  type        = list(string)
  default     = null
  description = "The queues to process (multi-queue mode)."
  validation {
    condition     = var.queue_names == null || alltrue([for q in coalesce(var.queue_names, []) : contains(["batches", "codeintel"], q)])
    error_message = "queue_names may only contain \"batches\" and \"codeintel\"."
  }
}

variable "maximum_runtime_per_job" {
  type        = string
  default     = "30m"
  description = "EXECUTOR_MAXIMUM_RUNTIME_PER_JOB. The unit's TimeoutStopSec (35min) assumes at most 30m."
  validation {
    condition     = can(regex("^([0-9]+h)?([0-9]+m)?([0-9]+s)?$", var.maximum_runtime_per_job)) && var.maximum_runtime_per_job != ""
    error_message = "maximum_runtime_per_job must be a Go duration such as 30m or 1h30m."
  }
}

variable "maximum_num_jobs" {
  type        = number
  default     = 2
  description = "EXECUTOR_MAXIMUM_NUM_JOBS: concurrent jobs per instance (size the machine: 4 CPU / 12G each by default)."
  validation {
    condition     = var.maximum_num_jobs >= 1 && var.maximum_num_jobs <= 64
    error_message = "maximum_num_jobs must be between 1 and 64."
  }
}

variable "num_total_jobs" {
  type        = number
  default     = 200
  description = "EXECUTOR_NUM_TOTAL_JOBS: the instance recycles (exit 0, poweroff, the group recreates it) after this many jobs; 0 = never."
  validation {
    condition     = var.num_total_jobs >= 0
    error_message = "num_total_jobs must be 0 (never recycle) or positive."
  }
}

variable "max_active_time" {
  type        = string
  default     = "12h"
  description = "EXECUTOR_MAX_ACTIVE_TIME: the instance recycles after this long; 0 = never."
  validation {
    condition     = var.max_active_time == "0" || can(regex("^([0-9]+h)?([0-9]+m)?([0-9]+s)?$", var.max_active_time))
    error_message = "max_active_time must be 0 or a Go duration such as 12h."
  }
}

variable "job_num_cpus" {
  type        = number
  default     = 4
  description = "EXECUTOR_JOB_NUM_CPUS: CPUs per job (0 = unbounded)."
  validation {
    condition     = var.job_num_cpus >= 0 && var.job_num_cpus <= 128
    error_message = "job_num_cpus must be between 0 and 128."
  }
}

variable "job_memory" {
  type        = string
  default     = "12G"
  description = "EXECUTOR_JOB_MEMORY: memory per job (0 = unbounded)."
  validation {
    condition     = can(regex("^[0-9]+([KMGT]i?B?)?$", var.job_memory))
    error_message = "job_memory must be a size such as 12G, 512M or 0."
  }
}

variable "min_replicas" {
  type        = number
  default     = 1
  description = "Minimum number of executor instances."
  validation {
    condition     = var.min_replicas >= 0
    error_message = "min_replicas must be 0 or more."
  }
}

variable "max_replicas" {
  type        = number
  default     = 1
  description = "Maximum number of executor instances. Autoscaling is on when max_replicas > min_replicas."
  validation {
    condition     = var.max_replicas >= 1 && var.max_replicas >= var.min_replicas
    error_message = "max_replicas must be at least 1 and at least min_replicas."
  }
}

variable "metrics_environment_label" {
  type        = string
  description = "Must equal the Sourcegraph worker's EXECUTOR_METRIC_ENVIRONMENT_LABEL (the metric's environment dimension)."
  validation {
    condition     = length(var.metrics_environment_label) > 0
    error_message = "metrics_environment_label must not be empty."
  }
}

variable "docker_registry_mirror" {
  type        = string
  default     = ""
  description = "URL of a docker registry mirror, e.g. http://10.0.1.2:5000 (docker-mirror module)."
  validation {
    condition     = var.docker_registry_mirror == "" || can(regex("^https?://[^/:]+:[0-9]+$", var.docker_registry_mirror))
    error_message = "docker_registry_mirror must be empty or scheme://ip:port."
  }
}

variable "assign_public_ip" {
  type        = bool
  default     = false
  description = "Give executors external IPs (only when the network has no Cloud NAT)."
}

variable "package_url" {
  type        = string
  description = "HTTPS URL of the sourcegraph-executor-py .deb that the instances install at boot."
  validation {
    condition     = can(regex("^https://", var.package_url))
    error_message = "package_url must be an https:// URL."
  }
}

variable "package_sha256" {
  type        = string
  description = "SHA-256 of that .deb; boot fails if the download does not match."
  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.package_sha256))
    error_message = "package_sha256 must be 64 lowercase hex digits."
  }
}
