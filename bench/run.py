"""The wactor benchmark suite: one command, every figure, results in bench/results/.

    .venv/bin/python bench/run.py [--quick] [--only NAME[,NAME]]

Writes ``latest.json`` (everything, with raw samples and machine info), ``latest.md`` (the table:
figure, ours, baseline, ratio, target, met?) and ``throughput_vs_components.png``. See
bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib.metadata
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, ROOT, Ctx, FigureResult, collect, new_ctx

FigureFn = Callable[[Ctx], Awaitable[FigureResult]]


def _figures() -> list[tuple[str, str, FigureFn]]:
    import _fig_actors
    import _fig_calls
    import _fig_checks
    import _fig_http
    import _fig_nats
    import _fig_operate
    import _fig_parallel
    import _fig_payload
    import _fig_scale
    import _fig_stall
    import _fig_startup

    return [
        ("actor_tell", "1. Actor tell throughput (no wasm)", _fig_actors.run),
        ("wat_echo", "2. host.request to the WAT echo", _fig_calls.run_wat_echo),
        ("python_echo", "3. host.request to the Python echo", _fig_calls.run_python_echo),
        ("latency", "4. Request latency, WAT echo", _fig_calls.run_latency),
        ("startup", "5. Start time and memory per instance", _fig_startup.run),
        ("payload_sweep", "6. Payload size sweep, WAT echo", _fig_payload.run_payload_sweep),
        ("components", "7. Throughput vs number of components", _fig_scale.run),
        (
            "capability_storage",
            "8. Capability check and storage cost",
            _fig_checks.run_capability_storage,
        ),
        ("nats", "9. NATS between two hosts", _fig_nats.run_nats),
        ("parallel", "10. Parallelism: ~2 ms compute, 1 vs 2 components busy", _fig_parallel.run),
        ("loop_stall", "11. Event-loop stall under a hostile guest", _fig_stall.run),
        ("http", "12. Outbound HTTP: a guest's wactor:http fetch", _fig_http.run),
        ("operate", "13. Operating a running host: control socket, /metrics", _fig_operate.run),
    ]


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _machine() -> dict[str, Any]:
    import psutil

    commit = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = (
            subprocess.run(
                ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                check=False,
                timeout=10,
            ).stdout.strip()
            or None
        )
    freq = psutil.cpu_freq()
    return {
        "cpu_count": os.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "cpu_model": _cpu_model(),
        "cpu_mhz": freq.current if freq else None,
        "memory_total_mib": psutil.virtual_memory().total // (1 << 20),
        "load_average_at_start": os.getloadavg(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "wasmtime": _version("wasmtime"),
        "componentize_py": _version("componentize-py"),
        "wactor": _version("wactor"),
        "git_commit": commit,
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


# --- report -----------------------------------------------------------------------------------


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if unit in ("ratio",):
            return f"{value:.2f}"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def _met(value: bool | None) -> str:
    if value is None:
        return ""
    return "yes" if value else "**no**"


_ROW = "| {figure} | {unit} | {ours} | {base} | {ratio} | {target} | {met} | {runs} |"


def write_markdown(path: Path, data: dict[str, Any]) -> None:
    meta = data["meta"]
    m = meta["machine"]
    lines = [
        "# wactor benchmark results",
        "",
        f"Run {meta['started']} ({meta['mode']}, {meta['wall_seconds']:.0f} s wall); "
        f"every figure is the median of {meta['reps']} runs unless its row says otherwise "
        "(runs column). "
        "ratio = ours ÷ baseline; for rates higher is better, for times, latencies and memory "
        "lower is better.",
        "",
        f"Machine: {m['cpu_count']} CPUs ({m['cpu_model']}), {m['memory_total_mib']} MiB, "
        f"Python {m['python']}, wasmtime {m['wasmtime']}, {m['platform']}, "
        f"load average at start {', '.join(f'{x:.2f}' for x in m['load_average_at_start'])}, "
        f"at end {', '.join(f'{x:.2f}' for x in meta['load_average_at_end'])} "
        "(a load well above 0 means other work shared the cores and the numbers are noisier; "
        "every run's value is in latest.json).",
        "",
        "| figure | unit | ours | baseline | ratio | target | met? | runs |",
        "|---|---|---:|---:|---:|---|---|---:|",
    ]
    notes: list[str] = []
    for name, fig in data["figures"].items():
        if fig.get("status") == "error":
            lines.append(f"| {fig['title']} | | error | | | | | |")
            notes.append(f"- **{fig['title']}**: error: `{fig['error']}`")
            continue
        if fig.get("status") == "skipped":
            lines.append(f"| {fig['title']} | | skipped | | | | | |")
            notes.append(f"- **{fig['title']}**: skipped: {fig['skipped']}")
            continue
        for row in fig["rows"]:
            lines.append(
                _ROW.format(
                    figure=row["figure"],
                    unit=row["unit"],
                    ours=_fmt(row["ours"]),
                    base=_fmt(row["baseline"]),
                    ratio=_fmt(row["ratio"], "ratio"),
                    target=row["target"] or "",
                    met=_met(row["met"]),
                    runs=row["runs"] if row["runs"] is not None else "",
                )
            )
            if row.get("note"):
                notes.append(f"- {row['figure']}: {row['note']}")
        del name
    lines += ["", "## Notes", "", *notes, ""]
    path.write_text("\n".join(lines))


def write_chart(path: Path, data: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    details = data["figures"].get("components", {}).get("details") or {}
    if not details:
        ax.text(0.5, 0.5, "figure 7 (components) has no data in this run", ha="center")
        ax.set_axis_off()
    else:
        counts = sorted(int(k) for k in details)
        ours = [details[str(c)]["ours_rps"] for c in counts]
        base = [details[str(c)]["baseline_rps"]["median"] for c in counts]
        cpu = [details[str(c)]["ours_cpu_per_wall"]["median"] for c in counts]
        med = [o["median"] for o in ours]
        err = [[o["median"] - o["min"] for o in ours], [o["max"] - o["median"] for o in ours]]
        ax.errorbar(
            counts, med, yerr=err, marker="o", capsize=3, label="wactor host.request (64 in flight)"
        )
        ax.plot(
            counts, base, marker="s", linestyle="--", label="stock wasmtime-py call, one thread"
        )
        ax.set_xscale("log")
        ax.set_xlabel("WAT echo components receiving")
        ax.set_ylabel("requests / s (median, min to max)")
        ax.set_ylim(bottom=0)
        ax.grid(True, which="both", alpha=0.3)
        ax2 = ax.twinx()
        ax2.plot(counts, cpu, marker="^", color="tab:gray", alpha=0.7, label="process CPU / wall")
        ax2.set_ylabel("process CPU time / wall time")
        ax2.set_ylim(0, max(2.1, max(cpu) * 1.1))
        handles = ax.get_legend_handles_labels()
        handles2 = ax2.get_legend_handles_labels()
        ax.legend(handles[0] + handles2[0], handles[1] + handles2[1], loc="lower left", fontsize=8)
        ax.set_title(f"Throughput vs number of components ({data['meta']['mode']} run)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- driver -----------------------------------------------------------------------------------


def _run_figure(ctx: Ctx, fn: FigureFn) -> dict[str, Any]:
    collect()
    load = os.getloadavg()[0]
    started = time.perf_counter()
    try:
        result = asyncio.run(fn(ctx))
    except Exception as exc:  # noqa: BLE001 - one figure failing must not stop the others
        return {
            "status": "error",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
            "seconds": time.perf_counter() - started,
            "load_average_1min_before": load,
        }
    finally:
        collect()
    out: dict[str, Any] = {
        "status": "skipped" if result.skipped else "ok",
        "seconds": time.perf_counter() - started,
        "load_average_1min_before": load,
        "rows": [row.as_dict() for row in result.rows],
        "details": result.details,
    }
    if result.skipped:
        out["skipped"] = result.skipped
    return out


def main(argv: list[str] | None = None) -> int:
    figures = _figures()
    names = [name for name, _, _ in figures]
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, smaller counts")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated figure names or numbers: "
        + ", ".join(f"{i}={n}" for i, n in enumerate(names, 1)),
    )
    args = parser.parse_args(argv)
    selected = names
    if args.only:
        selected = []
        for raw in args.only.split(","):
            item = raw.strip()
            if item.isdigit() and 1 <= int(item) <= len(names):
                item = names[int(item) - 1]
            if item not in names:
                parser.error(f"unknown figure {item!r}; choose from {', '.join(names)}")
            selected.append(item)

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("wactor").setLevel(logging.ERROR)  # shutdown chatter of many components
    ctx = new_ctx(args.quick)
    began = time.perf_counter()
    data: dict[str, Any] = {
        "meta": {
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "mode": "quick" if args.quick else "full",
            "reps": ctx.reps,
            "argv": sys.argv[1:] if argv is None else argv,
            "machine": _machine(),
        },
        "figures": {},
    }
    try:
        for name, title, fn in figures:
            if name not in selected:
                continue
            print(f"[{time.perf_counter() - began:6.1f} s] {title} ...", flush=True)
            result = _run_figure(ctx, fn)
            data["figures"][name] = {"title": title, **result}
            status = result["status"]
            extra = f": {result.get('error') or result.get('skipped')}" if status != "ok" else ""
            took = f"{status} in {result['seconds']:.1f} s{extra}"
            print(f"[{time.perf_counter() - began:6.1f} s]   {took}", flush=True)
    finally:
        shutil.rmtree(ctx.scratch, ignore_errors=True)
    data["meta"]["wall_seconds"] = time.perf_counter() - began
    data["meta"]["load_average_at_end"] = os.getloadavg()
    data["meta"]["finished"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    write_markdown(RESULTS / "latest.md", data)
    try:
        write_chart(RESULTS / "throughput_vs_components.png", data)
    except Exception as exc:  # noqa: BLE001 - the numbers matter more than the picture
        print(f"chart failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    print((RESULTS / "latest.md").read_text())
    print(
        f"wrote {RESULTS / 'latest.json'}, latest.md, throughput_vs_components.png "
        f"in {data['meta']['wall_seconds']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
