locals {
  prefix = var.resource_prefix == "" ? "" : "${var.resource_prefix}-"
}

resource "aws_vpc" "default" {
  #checkov:skip=CKV2_AWS_11:VPC flow logs are billed per GB and usually configured org-wide; enable them there.
  cidr_block           = "10.0.0.0/16"
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = "${local.prefix}sourcegraph-executors" }
}

# Lock down the VPC's default security group: nothing uses it.
resource "aws_default_security_group" "default" {
  vpc_id = aws_vpc.default.id
}

resource "aws_internet_gateway" "default" {
  vpc_id = aws_vpc.default.id
  tags   = { Name = "${local.prefix}sourcegraph-executors" }
}

# Executors and the docker mirror live here (private when nat = true).
resource "aws_subnet" "default" {
  vpc_id            = aws_vpc.default.id
  cidr_block        = "10.0.1.0/24"
  availability_zone = var.availability_zone
  tags              = { Name = "${local.prefix}sourcegraph-executors" }
}

# Only the NAT gateway sits in the public subnet.
resource "aws_subnet" "public" {
  count             = var.nat ? 1 : 0
  vpc_id            = aws_vpc.default.id
  cidr_block        = "10.0.0.0/24"
  availability_zone = var.availability_zone
  tags              = { Name = "${local.prefix}sourcegraph-executors-public" }
}

resource "aws_eip" "nat" {
  count  = var.nat ? 1 : 0
  domain = "vpc"
  tags   = { Name = "${local.prefix}sourcegraph-executors-nat" }
}

resource "aws_nat_gateway" "default" {
  count         = var.nat ? 1 : 0
  allocation_id = aws_eip.nat[0].id
  subnet_id     = aws_subnet.public[0].id
  depends_on    = [aws_internet_gateway.default]
  tags          = { Name = "${local.prefix}sourcegraph-executors" }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.default.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.default.id
  }
  tags = { Name = "${local.prefix}sourcegraph-executors-public" }
}

resource "aws_route_table" "default" {
  count  = var.nat ? 1 : 0
  vpc_id = aws_vpc.default.id
  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.default[0].id
  }
  tags = { Name = "${local.prefix}sourcegraph-executors-private" }
}

resource "aws_route_table_association" "public" {
  count          = var.nat ? 1 : 0
  subnet_id      = aws_subnet.public[0].id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table_association" "default" {
  subnet_id      = aws_subnet.default.id
  route_table_id = var.nat ? aws_route_table.default[0].id : aws_route_table.public.id
}
