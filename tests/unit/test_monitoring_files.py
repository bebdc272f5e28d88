"""The monitoring files in deploy/: the Grafana dashboard and the Prometheus rules load and follow their JSON
schemas, and every metric they query is one the node exports."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from tests.kit import PROJECT_ROOT
from tests.unit.test_deploy import tool

DEPLOY = PROJECT_ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "abidance.json"
RULES = DEPLOY / "prometheus" / "alerts.yml"
PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "le", "up", "job", "state", "on", "without",
                "max", "min", "avg", "count"}


def test_grafana_dashboard_loads_and_follows_the_dashboard_schema():
    json.loads(DASHBOARD.read_text())
    out = subprocess.run([tool("check-jsonschema"), "--schemafile", str(DEPLOY / "grafana" / "dashboard.schema.json"),
                          str(DASHBOARD)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_broken_dashboard_fails_the_schema(tmp_path):
    bad = json.loads(DASHBOARD.read_text())
    bad["panels"][0]["gridPos"]["w"] = 30
    del bad["panels"][1]["targets"][0]["expr"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    out = subprocess.run([tool("check-jsonschema"), "--schemafile", str(DEPLOY / "grafana" / "dashboard.schema.json"),
                          str(path)], capture_output=True, text=True)
    assert out.returncode != 0


def test_prometheus_rules_follow_the_rule_file_schema_and_the_config_loads_them():
    out = subprocess.run([tool("check-jsonschema"), "--schemafile", str(DEPLOY / "prometheus" / "rules.schema.json"),
                          str(RULES)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert config["scrape_configs"][0]["static_configs"][0]["targets"] == ["node:9464"]


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    names = set(re.findall(r"[a-z_][a-z0-9_]*", expr)) - PROMQL_WORDS
    return {n for n in names if n.startswith("abidance_")}


def exported_names() -> set[str]:
    """Every sample name the node's metrics can expose (with their _bucket/_total/... suffixes)."""
    pytest.importorskip("prometheus_client")
    from abidance.metrics.node_metrics import NodeMetrics, alerts_probe, store_probe
    from prometheus_client import generate_latest
    from abidance.core.bus import MessageBus
    from abidance.core.clock import TestClock
    from abidance.core.events import ConnectorHealth
    from types import SimpleNamespace
    from pathlib import Path

    m = NodeMetrics(MessageBus(), TestClock(0))
    m.registry.register(m._collector)
    m._health = ConnectorHealth("x", 1, 1, 0, 0, {"r": 1}, 0, 0, 0)
    writer = SimpleNamespace(accepted={}, written={}, spool_dir=Path("/nonexistent"), up=True)
    channel = {"delivered_alerts": 0, "delivered_messages": 0, "waiting": 0, "unreachable": False}
    service = SimpleNamespace(stats=lambda: {"overflow": 0, "channels": {"c": channel}})
    m.probes = {"store": store_probe(writer), "alerts": alerts_probe(service)}
    for label in ("REJECTED",):
        m.orders.labels(label)
    text = generate_latest(m.registry).decode()
    names = set(re.findall(r"^# (?:HELP|TYPE) (\S+)", text, re.M))
    return names | {n + s for n in names for s in ("_bucket", "_count", "_sum", "_total")}


def test_every_metric_in_the_dashboard_and_the_rules_is_exported_by_the_node():
    exported = exported_names()
    dash = json.loads(DASHBOARD.read_text())
    used = {n for p in dash["panels"] for t in p["targets"] for n in metric_names(t["expr"])}
    rules = yaml.safe_load(RULES.read_text())
    used |= {n for g in rules["groups"] for r in g["rules"] for n in metric_names(r["expr"])}
    assert used and not used - exported, sorted(used - exported)
