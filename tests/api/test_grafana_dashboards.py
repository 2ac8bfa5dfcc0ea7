"""The Grafana dashboards and the Prometheus config in ``dashboards/``: every JSON
parses and uses the ``${DS_PROMETHEUS}`` datasource, and every metric a PromQL
expression names exists on the ``/metrics`` of the real running service."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from tests.conftest import VideoFinder
from tests.e2e.test_service import ALERT_TIMEOUT_S, campus_camera, kill_service, start_service

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "dashboards" / "grafana"
PROMETHEUS_YML = ROOT / "dashboards" / "prometheus" / "prometheus.yml"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}

# What issue 8 asks the dashboards to show, at the least.
REQUIRED = {
    "cv_camera_up",
    "cv_camera_state",
    "cv_camera_input_fps",
    "cv_camera_decoded_fps",
    "cv_camera_last_frame_age_seconds",
    "cv_camera_reconnects_total",
    "cv_detector_inference_seconds_bucket",
    "cv_detector_queue_wait_seconds_bucket",
    "cv_detector_batch_fill_ratio",
    "cv_detector_frames_detected_by_camera_total",
    "cv_detector_frames_dropped_by_camera_total",
    "cv_incidents_total",
    "cv_recording_bytes",
    "cv_recording_oldest_timestamp_seconds",
    "cv_recording_deleted_segments_total",
    "cv_disk_free_bytes",
    "cv_disk_pressure",
    "cv_api_http_request_duration_seconds_bucket",
}

# PromQL words that look like metric names but are not.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
STRING = re.compile(r""""(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'""")
LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
IDENTIFIER = re.compile(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: every identifier that is not a function
    or aggregation (followed by ``(``), a keyword, a label (in ``{}``, ``by (…)``…),
    a string, a duration (in ``[]``) or a dashboard variable."""
    text = STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = LABEL_LIST.sub(" ", text)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", " ", text)  # $__rate_interval, ${camera}
    names = set()
    for match in IDENTIFIER.finditer(text):
        if text[match.end() :].lstrip().startswith("(") or match.group(0).lower() in KEYWORDS:
            continue
        names.add(match.group(0))
    return names


def canonical(name: str, histograms: set[str]) -> str:
    """A histogram's ``_bucket``/``_sum``/``_count`` series stand for the histogram."""
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name.removesuffix(suffix) in histograms:
            return name.removesuffix(suffix)
    return name


def dashboards() -> dict[str, dict[str, Any]]:
    paths = sorted(GRAFANA.glob("*.json"))
    assert paths, f"no dashboards in {GRAFANA}"
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in paths}


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # panels inside a collapsed row


def expressions(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    for panel in panels(board):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r}", target["expr"]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            selector = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
            yield f"variable {variable['name']!r}", selector.group(1) if selector else query


def used_names() -> dict[str, list[str]]:
    """Metric name -> where the dashboards use it."""
    found: dict[str, list[str]] = {}
    for file, board in dashboards().items():
        for where, expr in expressions(board):
            for name in metric_names(expr):
                found.setdefault(name, []).append(f"{file}: {where}")
    return found


def test_the_parser_finds_metric_names_only() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, route) (rate(cv_api_x_bucket{status=~"5..",'
        'route!="/a b"}[$__rate_interval]))) / on (route) group_left (job) '
        "sum without (instance) (increase(cv_y_total[1h] offset 5m)) or vector(0) "
        'and cv_z > bool 1e3 unless time() - cv_w{camera=~"${camera}"}'
    )
    assert metric_names(expr) == {"cv_api_x_bucket", "cv_y_total", "cv_z", "cv_w"}
    assert canonical("cv_api_x_bucket", {"cv_api_x"}) == "cv_api_x"
    assert canonical("cv_api_x_count", set()) == "cv_api_x_count"


def test_dashboards_parse_and_take_prometheus_from_the_variable() -> None:
    uids = []
    for file, board in dashboards().items():
        uids.append(board["uid"])
        assert board["title"] and board["schemaVersion"] >= 36, file  # Grafana 10+
        variables = {v["name"]: v for v in board["templating"]["list"]}
        ds = variables["DS_PROMETHEUS"]
        assert (ds["type"], ds["query"]) == ("datasource", "prometheus"), file
        ids = [p["id"] for p in panels(board)]
        assert len(ids) == len(set(ids)), f"{file}: repeated panel ids"
        for panel in panels(board):
            assert set(panel["gridPos"]) == {"h", "w", "x", "y"}, (file, panel["title"])
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == DATASOURCE, (file, panel["title"])
            assert panel["targets"], (file, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == DATASOURCE, (file, panel["title"])
                expr = target["expr"]
                for pair in ("()", "{}", "[]"):
                    assert expr.count(pair[0]) == expr.count(pair[1]), (file, expr)
    assert len(uids) == len(set(uids)), uids
    missing = REQUIRED - set(used_names())
    assert not missing, f"the dashboards do not show {sorted(missing)}"


def test_prometheus_scrapes_metrics_and_grafana_provisioning_points_at_it() -> None:
    prometheus = yaml.safe_load(PROMETHEUS_YML.read_text())
    [job] = prometheus["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and job["scrape_interval"] == "15s"
    assert job["static_configs"][0]["targets"]
    provisioning = GRAFANA / "provisioning"
    [datasource] = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert datasource["type"] == "prometheus" and datasource["url"].endswith(":9090")
    [provider] = yaml.safe_load((provisioning / "dashboards" / "commune-vision.yml").read_text())[
        "providers"
    ]
    assert provider["type"] == "file" and provider["options"]["path"]


def _exposed(metrics: str) -> tuple[set[str], set[str]]:
    """(the names of every sample, histograms as their base name; the histograms)."""
    families = list(text_string_to_metric_families(metrics))
    histograms = {f.name for f in families if f.type == "histogram" and f.samples}
    return {canonical(s.name, histograms) for f in families for s in f.samples}, histograms


@pytest.mark.e2e
def test_every_dashboard_metric_exists_on_the_running_service(
    tmp_path: Path, video: VideoFinder
) -> None:
    # Short segments, a quota of about one of them and frequent retention runs: the
    # deletion and oldest-footage series appear within seconds.
    camera = campus_camera(video("pets2009_vtest_480x360.mp4"))
    camera += "    record: {segment_s: 2, max_gb: 0.0004}\n"
    service = start_service(tmp_path, camera, retention_interval_s=2)
    try:
        # A live alert to a connected client records the fan-out latency histogram.
        with connect(
            f"ws://127.0.0.1:{service.port}/api/alerts/ws",
            open_timeout=10,
            additional_headers=service.headers,
        ) as ws:
            assert json.loads(ws.recv(timeout=ALERT_TIMEOUT_S))["kind"]
        used = used_names()
        seen: set[str] = set()
        histograms: set[str] = set()
        unknown = set(used)
        deadline = time.monotonic() + 120
        while unknown and time.monotonic() < deadline:
            names, hist = _exposed(httpx.get(f"{service.base}/metrics", timeout=10).text)
            seen, histograms = seen | names, histograms | hist
            unknown = {n for n in used if canonical(n, histograms) not in seen}
            time.sleep(0 if not unknown else 2)
    finally:
        kill_service(service)
    assert not unknown, "names the service's /metrics never showed:\n" + "\n".join(
        f"  {name}: {', '.join(used[name])}" for name in sorted(unknown)
    )
