"""The Grafana dashboard is the ops panels' (``paystream ops grafana``), and
its structure is one Grafana imports: unique ids, every panel on the 24-column
grid without overlap, every query on the data source variable."""

from __future__ import annotations

import json
from pathlib import Path

from devtools.ops.grafana import render
from services.metrics.panels import PANELS

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "paystream.json"


def test_the_committed_dashboard_is_the_generated_one() -> None:
    assert DASHBOARD.read_text() == render(), "run `paystream ops grafana` and commit it"


def test_the_dashboard_has_every_panel_once_on_the_grid() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert {"uid", "title", "panels", "templating", "time", "schemaVersion"} <= set(board)
    (variable,) = board["templating"]["list"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    assert [t["expr"] for p in panels for t in p["targets"]] == [
        p.expr for p in PANELS if not p.over_time
    ] + [p.expr for p in PANELS if p.over_time]
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        assert panel["type"] in {"timeseries", "stat"}
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & mine, f"panel {panel['title']} overlaps another"
        cells |= mine
