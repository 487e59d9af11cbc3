"""``termmon summary``: one block per run, as a table for people or strict JSON for scripts."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from termmon.analysis.alerts import load_alert_config
from termmon.analysis.summary import summarize
from termmon.format import strict_json_value
from termmon.loading import load_runs
from termmon.model.run import RunStatus
from termmon.roles import Role, first
from termmon.views.colors import SEVERITY_STYLE, STATUS_GLYPH


def print_summary(paths: list[str], *, as_json: bool, config: Path | None) -> int:
    alert_config = load_alert_config(config)
    runs = load_runs(paths, progress=True)
    now = time.time()
    data = summarize(runs, alert_config, now)
    if as_json:
        json.dump(strict_json_value(data), sys.stdout, allow_nan=False, indent=2)
        sys.stdout.write("\n")
        return 0
    _print_table(data)
    return 0


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Inf" if value > 0 else "-Inf"
        return f"{value:.4g}"
    return str(value)


def _print_table(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    if not data["runs"]:
        console.print(
            "no runs found (a run directory holds metrics.jsonl, results.json or debug_log_*.jsonl)"
        )
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("run", "status", "step", "epoch", "records", "loss (last / min)", "alerts"):
        table.add_column(column, justify="left" if column in ("run", "status") else "right")
    for block in data["runs"]:
        loss_name = first(Role.TRAIN_LOSS, block["metrics"])
        loss = None if loss_name is None else block["metrics"][loss_name]
        loss_text = "-" if loss is None else f"{_fmt(loss['last'])} / {_fmt(loss['min'])}"
        alerts = block["alerts"]
        worst = next(
            (s for s in ("critical", "warning", "info") if any(a["severity"] == s for a in alerts)), None
        )
        alert_text = Text(str(len(alerts)), style=SEVERITY_STYLE.get(worst or "", ""))
        records = f"{block['records']:,}" + (f" ({block['bad_lines']} bad)" if block["bad_lines"] else "")
        table.add_row(
            Text(block["name"]),
            Text(block["status"], style=STATUS_GLYPH[RunStatus(block["status"])][1]),
            _fmt(block["last_step"]),
            _fmt(block["last_epoch"]),
            records,
            loss_text,
            alert_text,
        )
    console.print(table)
    for block in data["runs"]:
        serious = [a for a in block["alerts"] if a["severity"] != "info"]
        for alert in serious[-5:]:
            line = Text("  ")
            line.append(f"{alert['severity']:<8}", style=SEVERITY_STYLE[alert["severity"]])
            line.append(f" {block['name']}: ")
            line.append(str(alert["message"]))
            console.print(line)
        if len(serious) > 5:
            console.print(Text(f"  … {len(serious) - 5} earlier alerts in {block['name']} (see --json)"))
