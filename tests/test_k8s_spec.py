"""The Kubernetes runtime's pure parts: manifests (`runtime.kubernetes.spec`), pod status reading
(`failures`), timestamped log splitting (`follow.TimestampedLines`) and the janitor's rule.

The shapes are Sourcegraph's (`SPS:cmd/executor/internal/worker/command/kubernetes.go`
`NewKubernetesSingleJob`); the cluster tests (`tests/k8s/`) run them for real.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from executor.config.kubernetes import KubernetesSettings
from executor.runtime.kubernetes import spec
from executor.runtime.kubernetes.failures import current_container, failure_of, start_problem
from executor.runtime.kubernetes.follow import TimestampedLines, stamp_key
from executor.runtime.kubernetes.janitor import is_orphan, janitor_kinds

TOKEN = "job-token-s3cr3t-value"


def plan(**overrides: Any) -> spec.JobPlan:
    taken: set[str] = set()
    values: dict[str, Any] = {
        "name": spec.job_name("batches", 42),
        "job_id": 42,
        "record_uid": "42",
        "token": TOKEN,
        "executor_name": "host-" + "a" * 80,
        "host": "host",
        "lock_path": "/tmp/.executor-x.lock",
        "clone_url": "http://127.0.0.1:3080/.executors/git/github.com/a/b",
        "commit": "deadbeef",
        "steps": [
            spec.StepPlan(
                key=spec.step_key("pre", 0),
                raw_key="pre",
                container=spec.container_name("pre", 0, taken),
                image="alpine:3",
                script="42.0_x@deadbeef.sh",
                env=["A=1", "B=x=y"],
            ),
            spec.StepPlan(
                key=spec.step_key("", 1),
                raw_key="",
                container=spec.container_name("", 1, taken),
                image="alpine:3",
                script="42.1_x@deadbeef.sh",
                dir="sub",
            ),
        ],
        "files": [spec.JobFile("a/b.txt", b"it's \x00 binary", 1700000000.0)],
    }
    values.update(overrides)
    return spec.JobPlan(**values)


def test_names_and_labels_are_sourcegraphs_and_valid() -> None:
    assert spec.job_name("batches", 42) == "sg-executor-job-batches-42"
    assert spec.step_key("pre", 0) == "step.kubernetes.pre"
    assert spec.step_key("", 3) == "step.kubernetes.3"
    taken: set[str] = set()
    assert spec.container_name("my.Key_1", 0, taken) == "step-kubernetes-my-key-1"
    assert spec.container_name("my.Key_1", 1, taken) == "step-kubernetes-my-key-1-1"
    label = spec.executor_label("h-" + "x" * 100)
    assert len(label) <= 63
    assert label != spec.executor_label("h-" + "x" * 99)


def test_job_shape() -> None:
    job = spec.build_job(plan(), KubernetesSettings())
    assert job["apiVersion"] == "batch/v1" and job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["activeDeadlineSeconds"] == 1200
    assert [c["name"] for c in pod["initContainers"]] == [
        "setup-workspace",
        "step-kubernetes-pre",
        "step-kubernetes-1",
    ]
    assert [c["name"] for c in pod["containers"]] == ["main"]
    assert pod["volumes"][0] == {"name": "job-data", "emptyDir": {"sizeLimit": "5Gi"}}
    step = pod["initContainers"][1]
    assert step["workingDir"] == "/job"
    assert pod["initContainers"][2]["workingDir"] == "/job/sub"
    assert step["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "x=y"},
        {"name": "EXECUTOR_ADD_SAFE", "value": "false"},
    ]
    assert step["resources"] == {"limits": {"memory": "12Gi"}, "requests": {"memory": "12Gi"}}
    assert "hostNetwork" not in pod and pod["securityContext"] == {"fsGroup": 1000}
    labels = job["metadata"]["labels"]
    assert labels[spec.LABEL_MANAGED_BY] == spec.MANAGED_BY and labels[spec.LABEL_JOB] == "42"
    assert job["spec"]["template"]["metadata"]["labels"] == labels


def test_the_token_is_only_in_the_secret() -> None:
    p = plan()
    job = json.dumps(spec.build_job(p, KubernetesSettings()))
    assert TOKEN not in job and base64.b64encode(TOKEN.encode()).decode() not in job
    setup = spec.build_job(p, KubernetesSettings())["spec"]["template"]["spec"]["initContainers"][0]
    assert setup["env"][0] == {
        "name": "TOKEN",
        "valueFrom": {"secretKeyRef": {"name": f"{p.name}-secrets", "key": "TOKEN"}},
    }
    secret = spec.build_secret(p)
    assert secret["metadata"]["name"] == "sg-executor-job-batches-42-secrets"
    assert base64.b64decode(secret["data"]["TOKEN"]).decode() == TOKEN
    assert base64.b64decode(secret["data"]["file-0"]) == b"it's \x00 binary"


def test_settings_reach_the_pod() -> None:
    settings = KubernetesSettings(
        node_selector={"disk": "ssd"},
        node_tolerations=[{"key": "k", "operator": "Exists"}],
        pod_anti_affinity=[{"topologyKey": "kubernetes.io/hostname"}],
        node_required_affinity_match_expressions=[{"key": "a", "operator": "In", "values": ["b"]}],
        image_pull_secrets=["regcred"],
        job_pod_annotations={"p": "1"},
        job_annotations={"j": "2"},
        run_as_user=1000,
        run_as_group=1001,
        job_host_network=True,
        resource_limit_cpu="2",
        job_volume_type="pvc",
        additional_job_volumes=[{"name": "extra", "emptyDir": {}}],
        additional_job_volume_mounts=[{"name": "extra", "mountPath": "/extra"}],
        image_pull_policy="Never",
        job_deadline=30,
    )
    job = spec.build_job(plan(), settings)
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"disk": "ssd"}
    assert pod["tolerations"] == [{"key": "k", "operator": "Exists"}]
    assert pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["securityContext"] == {"runAsUser": 1000, "runAsGroup": 1001, "fsGroup": 1000}
    assert pod["hostNetwork"] is True and pod["activeDeadlineSeconds"] == 30
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == f"{plan().name}-pvc"
    assert {"name": "extra", "mountPath": "/extra"} in pod["initContainers"][1]["volumeMounts"]
    assert all(c["imagePullPolicy"] == "Never" for c in pod["initContainers"])
    assert pod["initContainers"][0]["resources"]["limits"] == {"memory": "12Gi", "cpu": "2"}
    assert job["spec"]["template"]["metadata"]["annotations"] == {"p": "1"}
    assert job["metadata"]["annotations"]["j"] == "2"
    pvc = spec.build_pvc(plan(), settings)
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_paths_that_leave_the_workspace_are_refused() -> None:
    for bad in ("/etc/passwd", "../x", "a/../../x"):
        with pytest.raises(ValueError, match="refusing to write outside"):
            spec.build_job(plan(files=[spec.JobFile(bad, b"")]), KubernetesSettings())


def test_files_too_large_for_a_secret_are_an_error() -> None:
    big = spec.JobFile("big", b"x" * (spec.SECRET_LIMIT + 1))
    with pytest.raises(ValueError, match="do not fit"):
        spec.build_secret(plan(files=[big]))


def test_setup_script_is_sourcegraphs_sequence() -> None:
    script = spec.setup_script(plan(fetch_flags=["--no-tags", "--depth=1"]), KubernetesSettings())
    assert (
        "git -C . remote add origin http://127.0.0.1:3080/.executors/git/github.com/a/b" in script
    )
    assert '-c http.extraHeader="Authorization: Bearer $TOKEN"' in script
    assert "X-Sourcegraph-Job-ID:42" in script and "X-Sourcegraph-Actor-UID:internal" in script
    assert "fetch --progress --no-recurse-submodules --no-tags --depth=1 origin deadbeef" in script
    assert "checkout --progress --force deadbeef" in script
    assert "cp /sg-executor-files/file-0 /job/a/b.txt" in script
    assert "touch -m -d @1700000000 /job/a/b.txt" in script
    assert TOKEN not in script


@pytest.mark.parametrize(
    ("skip", "key", "runs", "file_left"),
    [
        (None, "a", True, False),
        ({"nextStep": "b"}, "a", False, True),
        ({"nextStep": "b"}, "b", True, False),
        ({"nextStep": ""}, "a", True, False),
    ],
)
def test_next_index_protocol(
    tmp_path: Path, skip: dict[str, str] | None, key: str, runs: bool, file_left: bool
) -> None:
    script = tmp_path / "nextIndex.sh"
    script.write_text(spec.NEXT_INDEX_SCRIPT)
    skip_file = tmp_path / "skip.json"
    if skip is not None:
        skip_file.write_text(json.dumps(skip))
    out = subprocess.run(
        ["sh", str(script), str(skip_file), key], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert (out != "skip") is runs
    assert skip_file.exists() is file_left


def pod(phase: str, init: list[dict[str, Any]], **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p"},
        "status": {"phase": phase, "initContainerStatuses": init, **status},
    }


def test_start_problems() -> None:
    never = pod(
        "Pending",
        [{"name": "s", "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "m"}}}],
    )
    problem = start_problem(never, current="s", current_for=0, pending_for=0, timeout=120)
    assert problem is not None and "ErrImageNeverPull: m" in problem
    backoff = pod("Pending", [{"name": "s", "state": {"waiting": {"reason": "ImagePullBackOff"}}}])
    assert start_problem(backoff, current="s", current_for=5, pending_for=5, timeout=120) is None
    late = start_problem(backoff, current="s", current_for=121, pending_for=121, timeout=120)
    assert late is not None and "ImagePullBackOff" in late
    unscheduled = pod(
        "Pending",
        [],
        conditions=[
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1"}
        ],
    )
    assert start_problem(unscheduled, current="s", current_for=9, pending_for=9, timeout=10) is None
    late = start_problem(unscheduled, current="s", current_for=11, pending_for=11, timeout=10)
    assert late is not None and "Unschedulable: 0/1" in late


def test_failures() -> None:
    oom = pod(
        "Failed",
        [
            {"name": "a", "state": {"terminated": {"exitCode": 0}}},
            {"name": "b", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}},
        ],
    )
    failure = failure_of(oom, ["a", "b", "main"])
    assert (failure.container, failure.exit_code, failure.reason) == ("b", 137, "OOMKilled")
    assert current_container(oom, ["a", "b", "main"]) == "main"
    deadline = pod("Failed", [], reason="DeadlineExceeded", message="too long")
    assert failure_of(deadline, ["a"]).reason == "DeadlineExceeded"


class Sink:
    def __init__(self) -> None:
        self.parts: list[tuple[str, bytes]] = []

    def write_block(self, stream: str, data: bytes) -> None:
        self.parts.append(("block", data))

    def write_partial(self, stream: str, data: bytes) -> None:
        self.parts.append(("partial", data))

    @property
    def text(self) -> bytes:
        return b"".join(d for _, d in self.parts)


def test_timestamped_lines_split_anywhere() -> None:
    raw = (
        b"2026-12-03T14:00:00.1Z line 1\n"
        b"2026-12-03T14:00:01.123456789Z line two\n"
        b"2026-12-03T14:00:02Z unfinished"
    )
    for cut in range(1, len(raw)):
        sink = Sink()
        lines = TimestampedLines(sink)
        lines.feed(raw[:cut])
        lines.feed(raw[cut:])
        lines.close()
        assert sink.text == b"line 1\nline two\nunfinished\n", cut
        assert lines.last_key == stamp_key(b"2026-12-03T14:00:02Z")


def test_timestamped_lines_drop_what_was_seen() -> None:
    sink = Sink()
    lines = TimestampedLines(sink, after=stamp_key(b"2026-12-03T14:00:01.5Z"))
    lines.feed(b"2026-12-03T14:00:01.5Z old\n2026-12-03T14:00:01.6Z new\n")
    assert sink.text == b"new\n"


def test_janitor_rule() -> None:
    mine = {spec.ANNOTATION_EXECUTOR: "me", spec.ANNOTATION_HOST: "h"}
    assert is_orphan(mine, {spec.LABEL_JOB: "1"}, executor_name="me", host="h", live=set())
    assert not is_orphan(mine, {spec.LABEL_JOB: "1"}, executor_name="me", host="h", live={"1"})
    other = {spec.ANNOTATION_EXECUTOR: "x", spec.ANNOTATION_HOST: "h", spec.ANNOTATION_LOCK: "/l"}
    dead, alive = (lambda _: False), (lambda _: True)
    assert is_orphan(other, {}, executor_name="me", host="h", live=set(), alive=dead)
    assert not is_orphan(other, {}, executor_name="me", host="h", live=set(), alive=alive)
    assert not is_orphan(other, {}, executor_name="me", host="elsewhere", live=set(), alive=dead)


class _CutStream:
    """FAKE (a fault that cannot be produced on demand for real): a followed `pods/log` stream
    that an idle timeout or an API server restart ends while the container still runs."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.content = self
        self.released = False

    async def read(self, size: int) -> bytes:
        chunk, self._data = self._data[:size], self._data[size:]
        return chunk

    def release(self) -> None:
        self.released = True


def test_a_cut_stream_is_reopened_until_the_container_terminated() -> None:
    import asyncio

    from executor.runtime.kubernetes.follow import follow_container

    stamp = "2026-12-03T14:00:0{}Z"
    first = f"{stamp.format(1)} one\n{stamp.format(2)} two\n".encode()
    # The reopened stream starts earlier (sinceSeconds) and repeats what was seen.
    second = f"{stamp.format(1)} one\n{stamp.format(2)} two\n{stamp.format(3)} three\n".encode()
    streams = [_CutStream(first), _CutStream(second)]
    opened: list[int | None] = []
    done = {"terminated": False}

    async def open_log(since: int | None) -> _CutStream:
        opened.append(since)
        stream = streams[len(opened) - 1]
        if len(opened) == 2:
            done["terminated"] = True  # the container ended while the second stream was read
        return stream

    async def changed(timeout: float) -> None:
        await asyncio.sleep(0)

    sink = Sink()
    asyncio.run(
        follow_container(open_log, sink, terminated=lambda: done["terminated"], changed=changed)
    )
    assert sink.text == b"one\ntwo\nthree\n"
    assert opened[0] is None and isinstance(opened[1], int) and opened[1] >= 1
    assert all(s.released for s in streams)


def test_step_command_keeps_the_exit_code_and_passes_sigterm(tmp_path: Path) -> None:
    import signal
    import time

    scripts = tmp_path / "job" / ".sourcegraph-executor"
    scripts.mkdir(parents=True)
    (tmp_path / "job" / "nextIndex.sh").write_text(spec.NEXT_INDEX_SCRIPT)
    (tmp_path / "job" / "nextIndex.sh").chmod(0o755)
    (scripts / "exit.sh").write_text("exit 7\n")
    (scripts / "sleep.sh").write_text("sleep 600\n")

    def command(script: str) -> str:
        text = spec.step_command(spec.StepPlan("k", "k", "c", "img", script, skip_dir="."))
        return text.replace("/job", str(tmp_path / "job"))

    assert subprocess.run(["sh", "-c", command("exit.sh")], check=False).returncode == 7
    proc = subprocess.Popen(["sh", "-c", command("sleep.sh")])
    time.sleep(1.0)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 143
    assert time.monotonic() - started < 30


def test_only_steps_after_a_pre_step_consult_its_skip_file() -> None:
    first = spec.StepPlan("step.kubernetes.a", "a", "c", "img", "a.sh", dir="repository")
    later = spec.StepPlan("step.kubernetes.b", "b", "c", "img", "b.sh", dir="repo", skip_dir=".")
    assert "nextIndex.sh" not in spec.step_command(first)
    assert "nextIndex.sh /job/skip.json b" in spec.step_command(later)


def test_janitor_lists_pvcs_only_with_the_pvc_volume_type() -> None:
    """The Role has a PVC rule only for the pvc type; listing PVCs without it would fail every
    sweep, leaving the Jobs and Secrets unswept too (found installing the chart)."""
    assert janitor_kinds("emptyDir") == ("Job", "Secret")
    assert janitor_kinds("pvc") == ("Job", "Secret", "PersistentVolumeClaim")
