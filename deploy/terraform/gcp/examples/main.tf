# Private executors behind Cloud NAT, a docker mirror, and autoscaling between 0 and 10 VMs on
# the batches and codeintel queues (one VM per 20 queued jobs).

module "networking" {
  source          = "../networking"
  region          = var.region
  nat             = true
  resource_prefix = "sg"
}

module "docker_mirror" {
  source              = "../docker-mirror"
  zone                = var.zone
  network_id          = module.networking.network_id
  subnet_id           = module.networking.subnet_id
  instance_tag_prefix = "prod"
  resource_prefix     = "sg"
}

module "executors" {
  source                                     = "../executors"
  zone                                       = var.zone
  network_id                                 = module.networking.network_id
  subnet_id                                  = module.networking.subnet_id
  resource_prefix                            = "sg"
  instance_tag                               = "prod-executors"
  sourcegraph_external_url                   = var.sourcegraph_external_url
  sourcegraph_executor_proxy_password_secret = var.token_secret
  queue_names                                = ["batches", "codeintel"]
  min_replicas                               = 0
  max_replicas                               = 10
  jobs_per_instance_scaling                  = 20
  metrics_environment_label                  = var.metrics_environment_label
  docker_registry_mirror                     = module.docker_mirror.url
  package_url                                = var.package_url
  package_sha256                             = var.package_sha256
}
