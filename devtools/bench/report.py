"""The bench's outputs: the JSON result, a PNG (throughput over time, latency
CDF per stage) and a Markdown section for docs/performance.md."""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from devtools.bench.baselines import Repeated
from devtools.bench.measure import LATENCY_STAGES
from devtools.bench.pipeline import BenchPlan, PipelineRun
from services.metrics.stats import wilson

# name -> (JSON path, comparison, target); the baselines are medians of repeated runs
TARGETS: dict[str, tuple[str, str, float]] = {
    "pipeline / no-op Faust 4-hop": ("ratios.pipeline_vs_faust_noop", ">=", 1.0),
    "pipeline / raw 4-hop": ("ratios.pipeline_vs_raw", ">=", 0.015),
    "capacity with p99 requested->settled within target (payments/s)": (
        "capacity_per_s",
        ">=",
        1,
    ),
    "p99 requested->settled at 70 % load (ms)": ("latency_ms.settled.p99", "<=", 1_500),
    "p99 requested->scored at 70 % load (ms)": ("latency_ms.scored.p99", "<=", 20),
}


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def _get(result: dict[str, Any], path: str) -> Any:
    value: Any = result
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def targets(
    result: dict[str, Any], table: dict[str, tuple[str, str, float]] = TARGETS
) -> dict[str, dict[str, Any]]:
    out = {}
    for name, (path, op, target) in table.items():
        value = _get(result, path)
        met = value is not None and (value >= target if op == ">=" else value <= target)
        out[name] = {"measured": value, "target": f"{op} {target:g}", "met": met}
    return out


def result_of(
    name: str,
    command: str,
    plan: BenchPlan,
    run: PipelineRun,
    raw: Repeated,
    noop: Repeated,
) -> dict[str, Any]:
    phases = [run.saturation, *run.steps, run.final]
    settled, failed = sum(p.settled for p in phases), sum(p.failed for p in phases)
    low, high = wilson(settled, settled + failed)
    rate = run.saturation.payments_per_s
    result: dict[str, Any] = {
        "run": name,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine(),
        "plan": dataclasses.asdict(plan),
        "payments_per_s": round(rate, 1),
        "capacity_per_s": run.capacity_per_s,
        "raw_4hop_per_s": round(raw.median_per_s, 1),
        "faust_noop_per_s": round(noop.median_per_s, 1),
        "baselines": {raw.name: raw.summary(), noop.name: noop.summary()},
        "ratios": {
            "pipeline_vs_raw": _ratio(rate, raw.median_per_s),
            "faust_noop_vs_raw": _ratio(noop.median_per_s, raw.median_per_s),
            "pipeline_vs_faust_noop": _ratio(rate, noop.median_per_s),
        },
        "stage_per_s": run.saturation.stage_per_s,
        "latency_ms": run.final.latency_ms,
        "latency_load_per_s": run.final.offered_per_s,
        "success_rate": settled / (settled + failed) if settled + failed else 0.0,
        "success_rate_95ci": [low, high],
        "failed_by_code": dict(sum((Counter(p.failed_by_code) for p in phases), Counter[str]())),
        "missing": sum(p.missing for p in phases),
        "dlq_count": run.dead_letters,
        "gas_per_payment": run.gas_per_payment,
        "onchain_transactions": run.onchain_transactions,
        "record_bytes": run.record_bytes,
        "processes": run.processes,
        "baseline_processes": {raw.name: raw.processes, noop.name: noop.processes},
        "phases": [p.summary() for p in phases],
        "elapsed_s": round(run.elapsed_s, 1),
    }
    result["targets"] = targets(result)
    return result


def plot(run: PipelineRun, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (over_time, cdf) = plt.subplots(1, 2, figsize=(13, 4.8))
    for stage in ("requested", "scored", "settled", "failed"):
        per_s = Counter(int(t) for t, s in run.timeline if s == stage)
        if per_s:
            xs = range(min(per_s), max(per_s) + 1)
            over_time.plot(list(xs), [per_s.get(x, 0) for x in xs], label=stage, lw=1)
    over_time.set(title="throughput over the whole run", xlabel="s", ylabel="records/s (log)")
    over_time.set_yscale("symlog", linthresh=10)
    over_time.legend()
    for stage in LATENCY_STAGES:
        values = sorted(run.final.samples_ms.get(stage, []))
        if values:
            ys = [(i + 1) / len(values) for i in range(len(values))]
            cdf.plot(values, ys, label=f"requested→{stage}", lw=1.2)
    cdf.set(
        title=f"latency CDF at {run.final.offered_per_s:,.0f}/s (70 % load)",
        xlabel="ms (log)",
        ylabel="fraction of payments",
        xscale="log",
    )
    cdf.grid(True, which="both", alpha=0.3)
    cdf.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def markdown(result: dict[str, Any], png: Path | None) -> str:
    """A section for docs/performance.md (``png`` relative to that file)."""
    m, lat = result["machine"], result["latency_ms"]
    lines = [
        f"#### Bench run {result['run']} ({result['when']})",
        "",
        f"`{result['command']}` on {m['cpus']} cores ({m['cpu_model']}), "
        f"{m['memory_gib']} GiB, Python {m['python']}; Kafka, PostgreSQL, Redis, anvil, "
        "the worker, the ledger sink and the load generator all on this machine.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| end to end, as fast as possible | {_n(result['payments_per_s'])} payments/s |",
        f"| capacity (p99 settled ≤ target) | {_n(result['capacity_per_s'])} payments/s |",
        f"| raw 4-hop confluent-kafka{_spread(result, 'raw_4hop')} |"
        f" {_n(result['raw_4hop_per_s'])} records/s |",
        f"| no-op Faust, 4 agents{_spread(result, 'faust_noop')} |"
        f" {_n(result['faust_noop_per_s'])} records/s |",
        f"| pipeline / raw · no-op Faust / raw | {_n(result['ratios']['pipeline_vs_raw'], 4)}"
        f" · {_n(result['ratios']['faust_noop_vs_raw'], 3)} |",
    ]
    for stage in LATENCY_STAGES:
        q = lat[stage]
        lines.append(
            f"| requested→{stage} at {_n(result['latency_load_per_s'])}/s, "
            f"p50 / p95 / p99 / p99.9 | {_n(q['p50'])} / {_n(q['p95'])} / {_n(q['p99'])} / "
            f"{_n(q['p99_9'])} ms |"
        )
    low, high = result["success_rate_95ci"]
    lines += [
        f"| success rate (Wilson 95 %) | {result['success_rate']:.2%} ({low:.2%} to {high:.2%})"
        f", {result['missing']} missing |",
        f"| DLQ records | {result['dlq_count']} |",
        f"| gas per settled payment | {_n(result['gas_per_payment'])} "
        f"({_n(result['onchain_transactions'])} transactions) |",
        "",
        "| target | measured | target | met |",
        "|---|---|---|---|",
    ]
    for name, t in result["targets"].items():
        met = "yes" if t["met"] else "no"
        value = t["measured"]
        digits = 4 if isinstance(value, float) and value < 1 else 0
        lines.append(f"| {name} | {_n(value, digits)} | {t['target']} | {met} |")
    steps = [p for p in result["phases"] if p["name"] == "step"]
    lines += [
        "",
        "Capacity search, offered → achieved payments/s (p99 requested→settled): "
        + ", ".join(
            f"{p['offered_per_s']:,.0f} → {p['payments_per_s']:,.0f} "
            f"({_n(p['latency_ms']['settled']['p99'])} ms)"
            for p in steps
        )
        + ".",
    ]
    usage = result["processes"].get("saturation", {})
    lines += [
        "",
        "CPU (% of one core) and peak RSS per process at saturation: "
        + ", ".join(
            f"{name} {u['cpu_percent']:.0f} % / {u['rss_mib']:.0f} MiB" for name, u in usage.items()
        )
        + ".",
    ]
    if png is not None:
        lines += ["", f"![throughput and latency]({png.as_posix()})"]
    return "\n".join(lines) + "\n"


def _spread(result: dict[str, Any], name: str) -> str:
    """``, median of 3 (min to max)`` for a repeated baseline, else nothing."""
    b = result.get("baselines", {}).get(name)
    if b is None or len(b["runs_per_s"]) < 2:
        return ""
    low, high = _n(b["min_per_s"]), _n(b["max_per_s"])
    return f", median of {len(b['runs_per_s'])} ({low} to {high})"


def _ratio(part: float, whole: float) -> float | None:
    """``part / whole`` to four significant digits (a ratio of 0.003 keeps its digits)."""
    return float(f"{part / whole:.4g}") if whole else None
