# Private executors behind NAT, a docker mirror, and autoscaling between 0 and 10 instances
# on the batches queue (one instance per 20 queued jobs).

module "networking" {
  source            = "../networking"
  availability_zone = var.availability_zone
  nat               = true
  resource_prefix   = "sg"
}

module "docker_mirror" {
  source              = "../docker-mirror"
  vpc_id              = module.networking.vpc_id
  subnet_id           = module.networking.subnet_id
  instance_tag_prefix = "prod"
  resource_prefix     = "sg"
}

module "executors" {
  source                                            = "../executors"
  vpc_id                                            = module.networking.vpc_id
  subnet_id                                         = module.networking.subnet_id
  resource_prefix                                   = "sg"
  instance_tag                                      = "prod"
  sourcegraph_external_url                          = var.sourcegraph_external_url
  sourcegraph_executor_proxy_password_ssm_parameter = var.token_ssm_parameter
  queue_name                                        = "batches"
  min_replicas                                      = 0
  max_replicas                                      = 10
  jobs_per_instance_scaling                         = 20
  metrics_environment_label                         = var.metrics_environment_label
  docker_registry_mirror                            = module.docker_mirror.url
  package_url                                       = var.package_url
  package_sha256                                    = var.package_sha256
}
