"""``termmon report RUN [--output FILE.md]``: the diagnosis of one run as Markdown, or in the terminal.

One renderer writes the Markdown; the terminal view is the same text through ``rich.markdown``, so the
file and the screen never disagree. Everything that came from disk (run, metric, module names, alert
and crash messages) goes through :func:`md_text`, which escapes Markdown and removes control characters:
such strings are data, never formatting, markup or terminal escape sequences.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from termmon.analysis.alerts import load_alert_config
from termmon.analysis.alerts.model import fmt_value, fmt_where
from termmon.analysis.diagnosis import Change, Diagnosis, Span, diagnose
from termmon.errors import NoRunsError, TermmonError, UsageError
from termmon.ingest.discovery import no_runs_message, resolve_run
from termmon.loading import load_workspace, report_problems
from termmon.model.run import Run
from termmon.sanitize import terminal_text

#: Past this many epochs the per-epoch table shows the first and the last half of this many.
MAX_EPOCH_ROWS = 20
#: Whole numbers below this read as counts (``1,024``); larger ones are measurements (``5.9e9``).
INTEGER_BELOW = 1e6
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#~!&])")


def run_report(run: Path | str, *, output: Path | None = None, config: Path | None = None) -> int:
    """The CLI entry: diagnose RUN, then write FILE.md and its PNGs, or print to the terminal."""
    alert_config = load_alert_config(config)
    location = resolve_run(run, prog="termmon report")
    if output is not None and output.is_dir():
        raise UsageError(
            f"termmon report: --output {output} is a directory; give a file name such as report.md"
        )
    workspace = load_workspace([str(location.dir)], progress=True, run=location)
    target = workspace.runs.get(location.path)
    if target is None:
        raise NoRunsError(no_runs_message([str(run)], "termmon report"))
    if target.errors and target.records == 0:  # nothing to diagnose: say why, not "no data"
        raise TermmonError(f"termmon report: {target.errors[0]}")
    diagnosis = diagnose(target, alert_config, time.time())
    if output is None:
        _print(render_markdown(diagnosis, {}))
    else:
        images = _write_files(target, diagnosis, output)
        print(f"wrote {output}" + (f" and {len(images)} PNGs beside it" if images else ""))
    return report_problems("termmon report", workspace)


def _write_files(run: Run, diagnosis: Diagnosis, output: Path) -> dict[str, Path]:
    from termmon.tools.report_plots import write_plots

    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        images = write_plots(run, diagnosis, output.parent / output.stem)
        links = {key: quote(path.name) for key, path in images.items()}
        output.write_text(render_markdown(diagnosis, links), encoding="utf-8")
    except OSError as exc:
        raise TermmonError(f"termmon report: cannot write {output}: {exc.strerror or exc}") from exc
    return images


def _print(markdown: str) -> None:
    from rich.console import Console
    from rich.markdown import Markdown

    Console().print(Markdown(markdown))


# --- Markdown ------------------------------------------------------------------------------------------------
def md_text(value: object) -> str:
    """A string from disk, safe inside Markdown text and table cells: what a terminal would act on shown
    as escapes (the one sanitiser, :func:`termmon.sanitize.terminal_text`), Markdown punctuation
    backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", terminal_text(value))


def _num(value: float) -> str:
    """Counts and label ids as integers (``1,024``), everything else as the alert messages write it: a
    gradient norm that happens to be whole at 5.9e9 is a measurement, not "5,939,499,520"."""
    if math.isfinite(value) and float(value).is_integer() and abs(value) < INTEGER_BELOW:
        return f"{int(value):,}"
    return fmt_value(float(value))


def _arrow(span: Span | None) -> str:
    return "-" if span is None else f"{_num(span.first)} → {_num(span.last)}"


def _avg(span: Span | None) -> str:
    return "-" if span is None else _num(span.mean)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def render_markdown(d: Diagnosis, images: Mapping[str, str]) -> str:
    """The whole report; ``images`` maps "loss", "grad_norm", "lr" to the PNG links to embed."""
    out = [f"# termmon report: {md_text(d.run_name)}", ""]
    facts = [f"status **{d.status}**", f"{d.records:,} records"]
    if d.last_step is not None:
        facts.append(f"last step {d.last_step:,}")
    if d.last_epoch is not None:
        facts.append(f"last epoch {d.last_epoch:,}")
    if d.bad_lines:
        facts.append(f"{d.bad_lines:,} unreadable lines skipped")
    out += [" · ".join(facts), ""]
    bad = len(d.advice)
    if bad:
        out += [f"**{bad} bad sign{'s' if bad != 1 else ''} found**: see *What to check*.", ""]
    elif d.records == 0:
        out += ["**The run has no records yet**: nothing to diagnose.", ""]
    else:
        out += ["**No bad signs found.**", ""]
    out += _progression(d, images)
    out += _improvement(d)
    out += _gradients(d, images)
    out += _updates(d)
    out += _data(d)
    out += _alerts(d)
    out += _what_to_check(d)
    return "\n".join(out).rstrip() + "\n"


def _image(images: Mapping[str, str], key: str, title: str) -> list[str]:
    return [f"![{title}]({images[key]})", ""] if key in images else []


def _progression(d: Diagnosis, images: Mapping[str, str]) -> list[str]:
    out = ["## Training progression", ""]
    p = d.progression
    if p is None:
        return [*out, "No loss or accuracy logged: `tm.step(loss=...)`, seed 004's `training_step`.", ""]
    if p.epochs:
        loss = f"loss ({md_text(p.loss_metric)})" if p.loss_metric else "loss"
        accuracy = any(row.accuracy is not None for row in p.epochs)  # columns of dashes otherwise
        header = ["epoch", "points", f"{loss} first → last", "avg"]
        header += ["accuracy first → last", "avg"] if accuracy else []
        header += ["lr"]
        rows = [
            [
                "-" if row.epoch is None else str(row.epoch),
                f"{row.points:,}",
                _arrow(row.loss),
                _avg(row.loss),
                *((_arrow(row.accuracy), _avg(row.accuracy)) if accuracy else ()),
                _arrow(row.lr),
            ]
            for row in p.epochs
        ]
        if len(rows) > MAX_EPOCH_ROWS:
            half = MAX_EPOCH_ROWS // 2
            rows = [*rows[:half], ["…"] * len(header), *rows[-half:]]
        out += _table(header, rows)
    if p.epoch_metrics:
        rows = [
            [md_text(name), _num(s.first), _num(s.last), _num(s.min), _num(s.max), f"{s.count:,}"]
            for name, s in p.epoch_metrics.items()
        ]
        out += [
            "Epoch-level metrics:",
            "",
            *_table(["metric", "first", "last", "min", "max", "epochs"], rows),
        ]
    if p.lr is not None:
        lr = p.lr
        ramp = " (ramps up: warmup)" if p.lr_ramps_up else ""
        out += [f"LR: {_num(lr.first)} → {_num(lr.last)}, range {_num(lr.min)} to {_num(lr.max)}{ramp}", ""]
    return out + _image(images, "loss", "loss curve") + _image(images, "lr", "learning rate")


def _change_line(label: str, change: Change | None) -> list[str]:
    if change is None:
        return []
    if not math.isfinite(change.first) and not math.isfinite(change.last):
        return [f"- {label} ({md_text(change.metric)}): {change.verdict.value}"]
    sign = f"{change.delta:+.4g}" if math.isfinite(change.delta) else "n/a"
    return [
        f"- {label} ({md_text(change.metric)}): first {change.window} {change.unit} {_num(change.first)}, "
        f"last {change.window} {change.unit} {_num(change.last)}, change {sign} (**{change.verdict.value}**)"
    ]


def _improvement(d: Diagnosis) -> list[str]:
    out = ["## Improvement check", ""]
    imp = d.improvement
    if imp is None:
        return [*out, "No loss or accuracy logged, so nothing to compare.", ""]
    return out + _change_line("Loss", imp.loss) + _change_line("Accuracy", imp.accuracy) + [""]


def _gradients(d: Diagnosis, images: Mapping[str, str]) -> list[str]:
    out = ["## Gradient analysis", ""]
    g = d.gradients
    if g is None:
        return [
            *out,
            "No gradient statistics logged: `Telemetry(track_gradients=True)` or seed 004's `gradient_stats`.",
            "",
        ]
    n = g.norms
    if n.count:
        out += [
            f"- Total gradient norm ({md_text(g.metric)}, {n.count:,} points): range {_num(n.min)} to "
            f"{_num(n.max)}, mean {_num(n.mean)}"
            + (f"; **{n.nonfinite:,} non-finite**" if n.nonfinite else ""),
            f"- Near zero (< {g.near_zero_threshold:g}): **{g.near_zero:,}** steps"
            + (" (good)" if not g.near_zero else ": no gradient flow there"),
            f"- Exploding (> {g.exploding_threshold:,g}): **{g.exploding:,}** steps",
            "",
        ]
    if g.top_modules:
        rows = [[md_text(m.name), _num(m.mean), _num(m.last)] for m in g.top_modules]
        out += ["Top modules by gradient norm:", "", *_table(["module", "mean norm", "last norm"], rows)]
    if g.silent_modules:
        out += [
            "Modules whose gradient was always near zero: " + ", ".join(md_text(m) for m in g.silent_modules),
            "",
        ]
    return out + _image(images, "grad_norm", "gradient norm")


def _updates(d: Diagnosis) -> list[str]:
    out = ["## Parameter updates", ""]
    u = d.updates
    if u is None:
        return [
            *out,
            "No parameter-update counts logged: `tm.watch(model, optimizer)` or seed 004's `param_updates`.",
            "",
        ]
    total = "?" if math.isnan(u.last_total) else _num(u.last_total)
    out.append(
        f"- Parameters updated (last measurement): {_num(u.last_updated)}/{total}, over {u.measurements:,} measurements"
    )
    if u.no_update_steps:
        steps = ", ".join("?" if s is None else f"{s:,}" for s in u.no_update_steps[:10])
        more = f" and {len(u.no_update_steps) - 10:,} more" if len(u.no_update_steps) > 10 else ""
        out.append(
            f"- **NO PARAMETER UPDATES** in {len(u.no_update_steps):,} measurements (steps {steps}{more})"
        )
    else:
        out.append("- Every measurement saw parameters change")
    if u.partial:
        out.append(
            f"- {u.partial:,} measurements updated only some parameters (fewest: {_num(u.min_updated)})"
        )
    out.append("")
    if u.top_changed:
        rows = [[md_text(m.name), _num(m.mean), _num(m.last)] for m in u.top_changed]
        out += ["Top parameters by change:", "", *_table(["parameter", "mean change", "last change"], rows)]
    return out


def _data(d: Diagnosis) -> list[str]:
    out = ["## Data issues", ""]
    data = d.data
    if data is None:
        return [
            *out,
            "No label checks logged: seed 004's `data_sanity_check` or `tm.step(labels=...)` batch stats.",
            "",
        ]
    if data.label_ranges:
        rows = [
            [
                "-" if c.step is None else f"{c.step:,}",
                _num(c.label_min),
                _num(c.label_max),
                _num(c.n_codes),
                "yes" if c.in_range else "**OUT OF RANGE**",
            ]
            for c in data.label_ranges
        ]
        verdict = (
            f"**Labels out of range** in {len(data.out_of_range)} check(s)."
            if data.out_of_range
            else "Labels in range."
        )
        out += [
            f"Label range: {verdict}",
            "",
            *_table(["step", "label min", "label max", "n_codes", "in range"], rows),
        ]
    else:
        out += ["No label range check logged (seed 004's `data_sanity_check`).", ""]
    b = data.bias
    if b is not None:
        verdict = (
            f"**Label bias**: class {b.dominant} is {b.dominant_pct:.1f}% of batch labels on average "
            f"(an even split is {b.even_pct:.1f}%)."
            if b.biased
            else f"Batch labels are balanced (largest class {b.dominant}: {b.dominant_pct:.1f}%, even split {b.even_pct:.1f}%)."
        )
        rows = [[f"{md_text(b.metric_prefix)}winner\\_{k}\\_pct", f"{pct:.1f}%"] for k, pct in b.class_pct]
        out += [
            f"Label balance over {b.batches:,} logged batches: {verdict}",
            "",
            *_table(["class", "mean share"], rows),
        ]
    else:
        out += ["No batch label distribution logged (`winner_<k>_pct`).", ""]
    return out


def _alerts(d: Diagnosis) -> list[str]:
    out = ["## Alerts", ""]
    if not d.alerts:
        return [*out, "No alerts.", ""]
    rows = [
        [str(a.severity), md_text(a.kind), fmt_where(a.step, a.epoch), md_text(a.message)] for a in d.alerts
    ]
    return out + _table(["severity", "kind", "where", "message"], rows)


def _what_to_check(d: Diagnosis) -> list[str]:
    out = ["## What to check", ""]
    if d.advice:
        out += ["Bad signs:", ""]
        for i, advice in enumerate(d.advice, 1):
            out.append(f"{i}. **{md_text(advice.finding)}**")
            out += [f"   - {check}" for check in advice.checks]
        out.append("")
    else:
        out += ["No bad signs found.", ""]
    if d.good_signs:
        out += ["Good signs:", ""] + [f"- {md_text(sign)}" for sign in d.good_signs] + [""]
    return out
