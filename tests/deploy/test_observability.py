"""Observability kit: every executor metric is charted or alerted on, and the files parse."""

from __future__ import annotations

import json
from pathlib import Path

from ruamel.yaml import YAML

OBS = Path(__file__).resolve().parents[2] / "deploy" / "observability"
METRICS = [
    "src_executor_processor_handlers", "src_executor_processor_total",
    "src_executor_processor_errors_total", "src_executor_processor_duration_seconds",
    "src_apiworker_apiclient_queue_total", "src_apiworker_apiclient_queue_errors_total",
    "src_apiworker_apiclient_queue_duration_seconds", "src_apiworker_command_total",
    "src_apiworker_command_errors_total", "src_apiworker_command_duration_seconds",
    "executor_cancel_latency_seconds", "executor_janitor_containers_removed_total",
    "executor_janitor_workspaces_removed_total", "executor_janitor_errors_total",
    "executor_disk_pressure", "executor_docker_engine_up",
]  # fmt: skip


def test_dashboard_charts_every_metric() -> None:
    dash = json.loads((OBS / "grafana-dashboard.json").read_text())
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    assert [m for m in METRICS if m not in exprs] == []
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])


def test_alert_rules_parse_and_cover_errors() -> None:
    doc = YAML(typ="safe").load((OBS / "prometheus-rules.yaml").read_text())
    rules = [r for g in doc["groups"] for r in g["rules"]]
    assert all({"alert", "expr", "labels", "annotations"} <= set(r) for r in rules)
    exprs = " ".join(r["expr"] for r in rules)
    for metric in (
        "src_executor_processor_errors_total",
        "src_apiworker_apiclient_queue_errors_total",
        "executor_cancel_latency_seconds",
        "executor_janitor_errors_total",
        "executor_janitor_containers_removed_total",
        "executor_disk_pressure",
        "executor_docker_engine_up",
    ):
        assert metric in exprs, metric
