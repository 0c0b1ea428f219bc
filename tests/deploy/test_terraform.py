"""Terraform modules: the security and scaling properties the issue asks for, read from the HCL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hclutil import TF, first, load_dir, resources, variables

MODULES = [TF / c / m for c in ("aws", "gcp") for m in ("networking", "executors", "docker-mirror")]
ROOTS = [*MODULES, TF / "aws" / "examples", TF / "gcp" / "examples"]


@pytest.fixture(scope="module")
def aws_exec() -> dict:
    return load_dir(TF / "aws" / "executors")


@pytest.fixture(scope="module")
def gcp_exec() -> dict:
    return load_dir(TF / "gcp" / "executors")


@pytest.mark.parametrize("path", ROOTS, ids=lambda p: str(p.relative_to(TF)))
def test_every_module_parses_and_has_files(path: Path) -> None:
    mod = load_dir(path)
    assert mod, f"{path} has no HCL"
    if path.name != "examples":
        assert (path / "variables.tf").exists() and (path / "versions.tf").exists()


def test_aws_launch_template_requires_imdsv2_with_hop_limit_1(aws_exec: dict) -> None:
    lt = resources(aws_exec, "aws_launch_template")["executor"]
    md = first(lt["metadata_options"])
    assert md["http_tokens"] == "required"
    assert md["http_put_response_hop_limit"] == 1
    assert lt["instance_initiated_shutdown_behavior"] == "terminate"  # recycle = terminate


def test_aws_mirror_requires_imdsv2() -> None:
    inst = resources(load_dir(TF / "aws" / "docker-mirror"), "aws_instance")["mirror"]
    md = first(inst["metadata_options"])
    assert md["http_tokens"] == "required" and md["http_put_response_hop_limit"] == 1


@pytest.mark.parametrize("path", [TF / "aws" / "executors", TF / "aws" / "docker-mirror"])
def test_aws_no_ssh_from_anywhere(path: Path) -> None:
    mod = load_dir(path)
    for sg in resources(mod, "aws_security_group").values():
        for rule in sg.get("ingress", []):
            if rule["from_port"] <= 22 <= rule["to_port"]:
                assert "0.0.0.0/0" not in rule.get("cidr_blocks", [])
    ssh = variables(mod)["ssh_access_cidr_range"]
    assert ssh["default"] == "", "SSH must be closed by default"
    assert "0.0.0.0/0" in first(ssh["validation"])["condition"]


@pytest.mark.parametrize("path", [TF / "gcp" / "executors", TF / "gcp" / "docker-mirror"])
def test_gcp_ssh_only_from_iap(path: Path) -> None:
    for fw in resources(load_dir(path), "google_compute_firewall").values():
        ports = [p for allow in fw["allow"] for p in allow.get("ports", [])]
        if "22" in ports:
            assert fw["source_ranges"] == ["35.235.240.0/20"]
        assert "0.0.0.0/0" not in fw["source_ranges"]


def test_aws_autoscaling_on_queue_size(aws_exec: dict) -> None:
    alarms = resources(aws_exec, "aws_cloudwatch_metric_alarm")["scale"]
    queries = {q["id"]: q for q in alarms["metric_query"]}
    metric = first(queries["queueSize"]["metric"])
    assert metric["metric_name"] == "src_executors_queue_size"
    assert metric["namespace"] == "sourcegraph-executor"
    assert set(metric["dimensions"]) == {"queueName", "environment"}
    expr = queries["desired"]["expression"]
    assert "CEIL(queueSize / ${var.jobs_per_instance_scaling}) - instanceCount" in expr
    asg = resources(aws_exec, "aws_autoscaling_group")["executor"]
    assert asg["min_size"] == "${var.min_replicas}" and asg["max_size"] == "${var.max_replicas}"
    policies = resources(aws_exec, "aws_autoscaling_policy")
    assert policies["scale_out"]["scaling_adjustment"] == 1
    assert policies["scale_in"]["scaling_adjustment"] == -1


def test_gcp_autoscaling_on_queue_size(gcp_exec: dict) -> None:
    policy = first(
        resources(gcp_exec, "google_compute_autoscaler")["executor"]["autoscaling_policy"]
    )
    metric = first(policy["metric"])
    assert metric["name"] == "custom.googleapis.com/executors/queue/size"
    assert metric["single_instance_assignment"] == "${var.jobs_per_instance_scaling}"
    assert "queueName" in metric["filter"] and "environment" in metric["filter"]
    assert policy["min_replicas"] == "${var.min_replicas}"
    assert policy["max_replicas"] == "${var.max_replicas}"
    tmpl = resources(gcp_exec, "google_compute_instance_template")["executor"]
    assert first(tmpl["scheduling"])["automatic_restart"] is False  # powered off = recycled


@pytest.mark.parametrize(
    ("path", "template", "fetch"),
    [
        (TF / "aws" / "executors", "user-data.sh.tpl", "aws ssm get-parameter"),
        (TF / "gcp" / "executors", "startup-script.sh.tpl", "secretmanager.googleapis.com"),
    ],
)
def test_user_data_installs_package_and_reads_token_from_secret_store(
    path: Path, template: str, fetch: str
) -> None:
    text = (path / template).read_text()
    assert "sha256sum -c" in text and "apt-get install -y -q /tmp/executor.deb" in text
    assert fetch in text
    assert "EXECUTOR_FRONTEND_PASSWORD_FILE=/etc/executor/token" in text
    assert "EXECUTOR_FRONTEND_PASSWORD=" not in text
    for line in ("EXECUTOR_RECYCLE_ON_EXIT=true", "EXECUTOR_IPTABLES_RULES=true"):
        assert line in text
    assert "executor-iptables.sh" in text
    names = variables(load_dir(path))
    assert not any(n.endswith("proxy_password") for n in names), "no plain-text token variable"


SOURCEGRAPH_NAMES = {
    "resource_prefix", "machine_image", "machine_type", "boot_disk_size", "preemptible_machines",
    "instance_tag", "sourcegraph_external_url", "queue_name", "queue_names",
    "maximum_runtime_per_job", "maximum_num_jobs", "num_total_jobs", "max_active_time",
    "job_num_cpus", "job_memory", "min_replicas", "max_replicas", "jobs_per_instance_scaling",
    "metrics_environment_label", "docker_registry_mirror", "assign_public_ip",
}  # fmt: skip


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_inputs_named_like_sourcegraph(cloud: str) -> None:
    names = set(variables(load_dir(TF / cloud / "executors")))
    assert names >= SOURCEGRAPH_NAMES, SOURCEGRAPH_NAMES - names


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
@pytest.mark.parametrize(
    "name",
    ["min_replicas", "max_replicas", "jobs_per_instance_scaling", "maximum_num_jobs",
     "boot_disk_size", "queue_name", "sourcegraph_external_url", "maximum_runtime_per_job",
     "package_sha256"],
)  # fmt: skip
def test_variables_have_validation_with_message(cloud: str, name: str) -> None:
    var = variables(load_dir(TF / cloud / "executors"))[name]
    validation = first(var["validation"])
    assert validation["condition"] and len(validation["error_message"]) > 20


def test_every_numeric_input_is_validated() -> None:
    for path in MODULES:
        for name, var in variables(load_dir(path)).items():
            if var.get("type") == "${number}" or var.get("type") == "number":
                assert "validation" in var, f"{path.name}.{name} has no validation"


def test_max_replicas_must_cover_min(aws_exec: dict) -> None:
    cond = first(variables(aws_exec)["max_replicas"]["validation"])["condition"]
    assert re.search(r"var\.max_replicas >= var\.min_replicas", cond)
