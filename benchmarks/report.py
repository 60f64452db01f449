"""Results as Markdown (a summary matrix plus one detailed table per scenario) and as a PNG chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def summary_table(document: dict[str, Any]) -> str:
    """Clients x scenarios: msgs/s and client CPU µs per message in each cell."""
    results = document["results"]
    scenarios = list(dict.fromkeys(r["scenario"] for r in results))
    clients = list(dict.fromkeys(r["client"] for r in results))
    by_key = {(r["client"], r["scenario"]): r for r in results}
    lines = [
        "| client | " + " | ".join(scenarios) + " |",
        "|---|" + "---:|" * len(scenarios),
    ]
    for client in clients:
        cells = []
        for scenario in scenarios:
            r = by_key.get((client, scenario))
            if r is None:
                cells.append("")
            elif r["status"] == "ok":
                flag = " ⚠" if r["lost"] or r["duplicates"] or r.get("left_in_queue") else ""
                cells.append(f"{_num(r['msgs_per_s'])}/s · {_num(r['cpu_us_per_msg'])} µs{flag}")
            else:
                cells.append("n/a" if r["status"] == "n/a" else "error")
        lines.append(f"| {client} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scenario_tables(document: dict[str, Any]) -> str:
    parts = []
    results = document["results"]
    for scenario in dict.fromkeys(r["scenario"] for r in results):
        description = document["scenarios"].get(scenario, "")
        rows = [r for r in results if r["scenario"] == scenario]
        parts.append(f"#### {scenario}: {description}\n")
        parts.append(
            "| client | msgs | msgs/s | client CPU µs/msg | server CPU µs/msg | peak RSS MB | lost | dup | "
            "latency p50 / p99 ms | notes |"
        )
        parts.append("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
        for r in rows:
            if r["status"] != "ok":
                note = r["reason"] if r["status"] == "n/a" else f"error: {r['reason']}"
                parts.append(f"| {r['client']} | | | | | | | | | {note} |")
                continue
            latency = "; ".join(
                f"{name} {_num(v['p50'], 1)} / {_num(v['p99'], 1)}" for name, v in r["latency_ms"].items()
            )
            left = f" (left in queue: {r['left_in_queue']})" if r.get("left_in_queue") else ""
            parts.append(
                f"| {r['client']} | {r['messages']:,} | {_num(r['msgs_per_s'])} | "
                f"{_num(r['cpu_us_per_msg'])} | "
                f"{_num(r['server_cpu_us_per_msg'])} | {_num(r['peak_rss_mb'])} | {r['lost']}{left} | "
                f"{r['duplicates']} | {latency} | {_notes(r)} |"
            )
        parts.append("")
    return "\n".join(parts)


def _notes(r: dict[str, Any]) -> str:
    if r["scenario"] == "rpc":
        return ""  # the latency column says it all
    return str(r.get("notes") or "")


def markdown(document: dict[str, Any]) -> str:
    m = document["machine"]
    s = document["server"]
    head = [
        "### qfan benchmark results\n",
        f"`{document['command']}` on {m['cpu']} ({m['cores']} cores), Python {m['python']}, "
        f"server {s['version']}, {document['started']}.\n",
        "Each cell: messages per second (wall) · client CPU µs per message (user+sys of the client process "
        "over the measured phase). ⚠ marks lost or duplicated messages, or messages left in the queue after "
        "the client acked them all.\n",
        summary_table(document),
        "",
        scenario_tables(document),
        "Versions: " + ", ".join(f"{k} {v}" for k, v in m["libraries"].items()) + ".",
    ]
    return "\n".join(head) + "\n"


def chart(document: dict[str, Any], path: Path) -> str | None:
    """Grouped bars per scenario: msgs/s (top), client CPU µs per message (bottom); or why there is none."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]'): no chart"
    results = [r for r in document["results"] if r["status"] == "ok"]
    scenarios = list(dict.fromkeys(r["scenario"] for r in document["results"]))
    clients = list(dict.fromkeys(r["client"] for r in document["results"]))
    by_key = {(r["client"], r["scenario"]): r for r in results}
    figure, axes = plt.subplots(2, 1, figsize=(12, 8), sharex=True)
    width = 0.8 / max(1, len(clients))
    for n, client in enumerate(clients):
        xs = [i + (n - (len(clients) - 1) / 2) * width for i in range(len(scenarios))]
        rate = [by_key.get((client, s), {}).get("msgs_per_s") or 0 for s in scenarios]
        cpu = [by_key.get((client, s), {}).get("cpu_us_per_msg") or 0 for s in scenarios]
        axes[0].bar(xs, rate, width, label=client)
        axes[1].bar(xs, cpu, width, label=client)
    axes[0].set_ylabel("messages / s (wall)")
    axes[1].set_ylabel("client CPU µs / message")
    if results:
        axes[0].set_yscale("log")
        axes[1].set_yscale("log")
    axes[1].set_xticks(range(len(scenarios)), scenarios)
    axes[0].legend(ncol=4, fontsize="small")
    axes[0].set_title(f"qfan benchmarks on {document['server']['version']} (missing bar: not available)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return None
