# Names follow sourcegraph/terraform-aws-executors' modules/executors where the meaning is the
# same. Differences: the access token comes from SSM Parameter Store, not a plain variable; the
# package is installed at boot from package_url; SSH is closed unless a CIDR is given.

variable "vpc_id" {
  type        = string
  description = "ID of the VPC (networking module output vpc_id)."
}

variable "subnet_id" {
  type        = string
  description = "ID of the subnet (networking module output subnet_id)."
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

variable "machine_image" {
  type        = string
  default     = ""
  description = "AMI ID. Empty: the latest official Debian 12 amd64 AMI. Must be Debian 12 or Ubuntu 22.04+ (apt, python3.11)."
}

variable "machine_type" {
  type        = string
  default     = "m5.2xlarge"
  description = "EC2 instance type. Jobs run in docker, so no .metal type is needed."
}

variable "boot_disk_size" {
  type        = number
  default     = 100
  description = "Root volume size in GB (workspaces and images live there)."
  validation {
    condition     = var.boot_disk_size >= 20 && var.boot_disk_size <= 16384
    error_message = "boot_disk_size must be between 20 and 16384 GB."
  }
}

variable "boot_disk_iops" {
  type        = number
  default     = 3000
  description = "gp3 IOPS of the root volume."
  validation {
    condition     = var.boot_disk_iops >= 3000 && var.boot_disk_iops <= 16000
    error_message = "boot_disk_iops must be between 3000 and 16000 (gp3 limits)."
  }
}

variable "boot_disk_throughput" {
  type        = number
  default     = 125
  description = "gp3 throughput of the root volume in MiB/s."
  validation {
    condition     = var.boot_disk_throughput >= 125 && var.boot_disk_throughput <= 1000
    error_message = "boot_disk_throughput must be between 125 and 1000 MiB/s (gp3 limits)."
  }
}

variable "preemptible_machines" {
  type        = bool
  default     = false
  description = "Use spot instances (jobs on a reclaimed instance are retried by Sourcegraph)."
}

variable "instance_tag" {
  type        = string
  description = "Value of the executor_tag tag on every instance, used to find them."
  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,64}$", var.instance_tag))
    error_message = "instance_tag must be 1-64 characters of A-Z, a-z, 0-9, '_', '.' and '-'."
  }
}

variable "ssh_access_cidr_range" {
  type        = string
  default     = ""
  description = "CIDR allowed to SSH to executors. Empty (default): no SSH; use SSM Session Manager."
  validation {
    condition     = var.ssh_access_cidr_range == "" || (can(cidrnetmask(var.ssh_access_cidr_range)) && var.ssh_access_cidr_range != "0.0.0.0/0")
    error_message = "ssh_access_cidr_range must be empty or an IPv4 CIDR other than 0.0.0.0/0 (SSH from anywhere is not allowed)."
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

variable "sourcegraph_executor_proxy_password_ssm_parameter" {
  type        = string
  description = "Name of the SecureString SSM parameter that holds the executor access token (site config executors.accessToken)."
  validation {
    condition     = can(regex("^/?[A-Za-z0-9_./-]{1,1011}$", var.sourcegraph_executor_proxy_password_ssm_parameter))
    error_message = "sourcegraph_executor_proxy_password_ssm_parameter must be an SSM parameter name such as /sourcegraph/executor-token."
  }
}

variable "ssm_kms_key_arn" {
  type        = string
  default     = ""
  description = "ARN of the customer-managed KMS key of that parameter; empty for the AWS-managed aws/ssm key."
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
  default     = 1800
  description = "EXECUTOR_NUM_TOTAL_JOBS: the instance recycles (exit 0, poweroff, terminate) after this many jobs; 0 = never."
  validation {
    condition     = var.num_total_jobs >= 0
    error_message = "num_total_jobs must be 0 (never recycle) or positive."
  }
}

variable "max_active_time" {
  type        = string
  default     = "2h"
  description = "EXECUTOR_MAX_ACTIVE_TIME: the instance recycles after this long; 0 = never."
  validation {
    condition     = var.max_active_time == "0" || can(regex("^([0-9]+h)?([0-9]+m)?([0-9]+s)?$", var.max_active_time))
    error_message = "max_active_time must be 0 or a Go duration such as 2h."
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

variable "jobs_per_instance_scaling" {
  type        = number
  default     = 360
  description = "One instance per this many queued jobs (src_executors_queue_size)."
  validation {
    condition     = var.jobs_per_instance_scaling >= 1
    error_message = "jobs_per_instance_scaling must be at least 1."
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
  description = "URL of a docker registry mirror, e.g. http://10.0.1.4:5000 (docker-mirror module)."
  validation {
    condition     = var.docker_registry_mirror == "" || can(regex("^https?://[^/:]+:[0-9]+$", var.docker_registry_mirror))
    error_message = "docker_registry_mirror must be empty or scheme://ip:port."
  }
}

variable "assign_public_ip" {
  type        = bool
  default     = false
  description = "Give executors public IPs (only when the subnet has no NAT)."
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

variable "permissions_boundary_arn" {
  type        = string
  default     = ""
  description = "Optional permissions boundary for the instance role."
}
