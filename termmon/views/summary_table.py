"""``termmon summary``: one block per run, as a table for people or strict JSON for scripts."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from termmon.analysis.alerts import AlertEngine, load_alert_config
from termmon.analysis.summary import JudgedWhileLoading, summarize
from termmon.errors import NoRunsError
from termmon.format import strict_json_value
from termmon.ingest.discovery import no_runs_message
from termmon.loading import load_workspace, report_problems
from termmon.model.run import RunStatus
from termmon.roles import Role, first
from termmon.sanitize import terminal_text
from termmon.views.colors import SEVERITY_STYLE, STATUS_GLYPH

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text


def print_summary(paths: list[str], *, as_json: bool, config: Path | None) -> int:
    engine = AlertEngine(load_alert_config(config))
    workspace = load_workspace(paths, progress=True, meanwhile=JudgedWhileLoading(engine))
    runs = list(workspace.runs.values())
    now = time.time()
    data = summarize(runs, engine, now)
    if as_json:
        json.dump(strict_json_value(data), sys.stdout, allow_nan=False, indent=2)
        sys.stdout.write("\n")
    else:
        _print_table(data)
    status = report_problems("termmon summary", workspace)
    if not runs:
        raise NoRunsError(no_runs_message(paths))
    return status


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
            Text(terminal_text(block["name"])),
            Text(block["status"], style=STATUS_GLYPH[RunStatus(block["status"])][1]),
            _fmt(block["last_step"]),
            _fmt(block["last_epoch"]),
            records,
            loss_text,
            alert_text,
        )
    console.print(table)
    for block in data["runs"]:
        name = terminal_text(block["name"])
        serious = [a for a in block["alerts"] if a["severity"] != "info"]
        for alert in serious[-5:]:
            severity = Text(f"  {alert['severity']:<8} ", style=SEVERITY_STYLE[alert["severity"]])
            _print_hanging(console, severity, Text(f"{name}: {terminal_text(alert['message'])}"))
        if len(serious) > 5:
            _print_hanging(
                console, Text("  …"), Text(f"{len(serious) - 5} earlier alerts in {name} (see --json)")
            )


def _print_hanging(console: Console, head: Text, body: Text) -> None:
    """``head`` then ``body`` wrapped to the terminal with a hanging indent: a long message wraps under
    itself, not under the severity column (and no line ends in padding)."""
    from rich.text import Text

    indent = head.cell_len
    for i, line in enumerate(body.wrap(console, max(20, console.width - indent))):
        line.rstrip()
        console.print(Text.assemble(head if i == 0 else " " * indent, line), soft_wrap=True)
