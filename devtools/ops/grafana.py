"""The Grafana dashboard of ``deploy/grafana/paystream.json``, made from the
panels the ops page shows (``services/metrics/panels.py``): the same
expressions, the same titles. Its data source is a variable, so it imports
into any Grafana with a Prometheus that scrapes the engine."""

from __future__ import annotations

import json
from typing import Any

from services.metrics.panels import PANELS, Panel

UID = "paystream-ops"
GRAFANA_UNITS = {"s": "s", "records": "short", "ops": "ops", "percentunit": "percentunit"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
WIDE, NARROW, TALL, SHORT = 12, 4, 8, 4  # grid: 24 columns


def _panel(panel_id: int, panel: Panel, x: int, y: int) -> dict[str, Any]:
    width, height = (WIDE, TALL) if panel.over_time else (NARROW, SHORT)
    return {
        "id": panel_id,
        "type": "timeseries" if panel.over_time else "stat",
        "title": panel.title,
        "datasource": DATASOURCE,
        "gridPos": {"h": height, "w": width, "x": x, "y": y},
        "fieldConfig": {
            "defaults": {"unit": GRAFANA_UNITS.get(panel.unit, "none")},
            "overrides": [],
        },
        "options": {},
        "targets": [
            {
                "refId": "A",
                "datasource": DATASOURCE,
                "expr": panel.expr,
                "legendFormat": panel.legend or "__auto",
            }
        ],
    }


def dashboard() -> dict[str, Any]:
    """The numbers first (a row of stats), then the time series two by two."""
    panels: list[dict[str, Any]] = []
    x = y = 0
    for panel in [p for p in PANELS if not p.over_time]:
        if x + NARROW > 24:
            x, y = 0, y + SHORT
        panels.append(_panel(len(panels) + 1, panel, x, y))
        x += NARROW
    x, y = 0, y + SHORT
    for panel in [p for p in PANELS if p.over_time]:
        if x + WIDE > 24:
            x, y = 0, y + TALL
        panels.append(_panel(len(panels) + 1, panel, x, y))
        x += WIDE
    return {
        "uid": UID,
        "title": "paystream",
        "tags": ["paystream"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "5s",
        "time": {"from": "now-15m", "to": "now"},
        "timezone": "browser",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                }
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"
