"""The ``termmon`` command line: argument parsing and dispatch, nothing else.

Each command's work lives in its own module, imported only when that command runs, so
``termmon summary`` never pays for Textual and ``termmon control`` never pays for pandas.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from termmon import __version__
from termmon.errors import TermmonError, UsageError
from termmon.sanitize import terminal_text

MAIN_HELP = """\
Live terminal monitor for machine-learning training runs.

  termmon [PATH ...]                  watch runs live (run dir, parent of run dirs, or glob; default ".")
                                      a PATH may be remote: host:path, user@host:path, ssh://host[:port]/path
  termmon --static [--output FILE]    four-panel render: FILE.png/.svg/.pdf, or text to stdout
  termmon summary [PATH ...] [--json] one block per run
  termmon control PATH --log-every N  change a running trainer's log interval
  termmon demo                        the monitor on shipped demo runs plus one written live
  termmon report RUN                  diagnosis of one run
  termmon compare-weights A B --output DIR
  termmon profile-batch MODULE:FUNC --batch-sizes N ... --output FILE.md

Run `termmon COMMAND --help` for a command's options.
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors raise so main() prints one line and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


#: ``--poll`` bounds: below 0.05 s polling costs a core for nothing; above an hour it is not a monitor.
MIN_POLL_SECONDS = 0.05
MAX_POLL_SECONDS = 3600.0


def _poll_seconds(text: str) -> float:
    """``--poll``: a number of seconds in the sane range. nan, inf and 1e-9 parse as floats, but inf
    never refreshes and a tiny interval busy-loops a core, so they are usage errors (exit 2)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not MIN_POLL_SECONDS <= seconds <= MAX_POLL_SECONDS:  # also false for NaN
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds from {MIN_POLL_SECONDS:g} to {MAX_POLL_SECONDS:g}, not {text!r}"
        )
    return seconds


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="TOML",
        help="alert thresholds file (default: $XDG_CONFIG_HOME/termmon/config.toml when present)",
    )


def _monitor_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="termmon",
        description=MAIN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "paths", nargs="*", metavar="PATH", help='run dirs, parents of run dirs or globs (default ".")'
    )
    p.add_argument(
        "--poll",
        type=_poll_seconds,
        metavar="SECONDS",
        help="poll the files every SECONDS instead of relying on filesystem events (NFS, SSHFS); "
        "for remote paths, how often each host is asked for new bytes (default 2); "
        f"{MIN_POLL_SECONDS:g} to {MAX_POLL_SECONDS:g}",
    )
    p.add_argument("--static", action="store_true", help="render the panels once instead of the live TUI")
    p.add_argument(
        "--export-dir",
        type=Path,
        metavar="DIR",
        help="where `e` writes its PNGs (default: beside the selected run, in its parent directory)",
    )
    p.add_argument("--no-bell", action="store_true", help="no terminal bell on a critical alert")
    p.add_argument(
        "--output", "-o", type=Path, metavar="FILE", help="with --static: write FILE.png, .svg or .pdf"
    )
    _add_config(p)
    p.add_argument("--version", action="version", version=f"termmon {__version__}")
    return p


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parsers: dict[str, argparse.ArgumentParser] = {}

    p = _Parser(prog="termmon summary", description="One block per run: status, records, metrics, alerts.")
    p.add_argument("paths", nargs="*", metavar="PATH", default=[], help='runs to summarise (default ".")')
    p.add_argument("--json", action="store_true", help="strict JSON on stdout (shape in docs/formats.md)")
    _add_config(p)
    parsers["summary"] = p

    p = _Parser(
        prog="termmon control",
        description="Ask a running trainer to log every N steps (what the TUI's +/- keys do).",
    )
    p.add_argument("path", metavar="PATH", help="the run directory")
    p.add_argument("--log-every", type=int, required=True, metavar="N", help="clamped to 5..2000")
    parsers["control"] = p

    p = _Parser(prog="termmon demo", description="The live monitor on the shipped demo runs plus a live one.")
    p.add_argument(
        "--poll",
        type=_poll_seconds,
        metavar="SECONDS",
        help=f"force polling every SECONDS ({MIN_POLL_SECONDS:g} to {MAX_POLL_SECONDS:g})",
    )
    parsers["demo"] = p

    p = _Parser(prog="termmon report", description="Diagnose one run: what went wrong and what to check.")
    p.add_argument("run", metavar="RUN", help="the run directory")
    p.add_argument(
        "--output", "-o", type=Path, metavar="FILE.md", help="write Markdown (curves as PNGs beside it)"
    )
    _add_config(p)
    parsers["report"] = p

    p = _Parser(
        prog="termmon compare-weights",
        description="Compare two runs' weight snapshots layer by layer (seed 000's compare_weights).",
    )
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument("--output", "-o", type=Path, required=True, metavar="DIR")
    parsers["compare-weights"] = p

    p = _Parser(
        prog="termmon profile-batch",
        description="Time a training function at several batch sizes, each in a fresh process.",
    )
    p.add_argument("target", metavar="MODULE:FUNC", help="called as FUNC(batch_size=N, epochs=E)")
    p.add_argument("--batch-sizes", type=int, nargs="+", required=True, metavar="N")
    p.add_argument("--epochs", type=int, default=5, metavar="E", help="epochs per batch size (default 5)")
    p.add_argument("--output", "-o", type=Path, required=True, metavar="FILE.md")
    parsers["profile-batch"] = p
    return parsers


def _run_monitor(args: argparse.Namespace) -> int:
    if args.output is not None and not args.static:
        raise UsageError("termmon: --output needs --static")
    paths = args.paths or ["."]
    if args.static:
        from termmon.views.static import render_static

        return render_static(paths, output=args.output, config=args.config)
    from termmon.views.app import run_monitor

    if args.export_dir is not None and not args.export_dir.is_dir():
        raise UsageError(f"termmon: --export-dir {args.export_dir}: no such directory")
    return run_monitor(
        paths, poll=args.poll, config=args.config, export_dir=args.export_dir, bell=not args.no_bell
    )


def _run_summary(args: argparse.Namespace) -> int:
    from termmon.ingest.workers import one_blas_thread, prestart

    paths = args.paths or ["."]
    one_blas_thread()
    prestart(paths)  # the workers start while the summary's imports run
    from termmon.views.summary_table import print_summary

    return print_summary(paths, as_json=args.json, config=args.config)


def _run_control(args: argparse.Namespace) -> int:
    from termmon.control import request_log_every

    request = request_log_every(args.path, args.log_every)
    note = f" (clamped from {args.log_every})" if request.clamped else ""
    print(f"{args.path}: asked the trainer to log every {request.log_every} steps{note} [seq {request.seq}]")
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from termmon.demo import run_demo

    return run_demo(poll=args.poll)


def _run_report(args: argparse.Namespace) -> int:
    from termmon.tools.report import run_report

    return run_report(args.run, output=args.output, config=args.config)


def _run_compare_weights(args: argparse.Namespace) -> int:
    from termmon.tools.compare_weights import run_compare_weights

    return run_compare_weights(Path(args.run_a), Path(args.run_b), args.output)


def _run_profile_batch(args: argparse.Namespace) -> int:
    from termmon.tools.profile_batch import run_profile_batch

    return run_profile_batch(args.target, args.batch_sizes, epochs=args.epochs, output=args.output)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "summary": _run_summary,
    "control": _run_control,
    "demo": _run_demo,
    "report": _run_report,
    "compare-weights": _run_compare_weights,
    "profile-batch": _run_profile_batch,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and ``python -m termmon``; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list and args_list[0] in COMMANDS:
            command = args_list[0]
            args = _subparsers()[command].parse_args(args_list[1:])
            return COMMANDS[command](args)
        return _run_monitor(_monitor_parser().parse_args(args_list))
    except TermmonError as exc:
        print(terminal_text(exc), file=sys.stderr)  # messages name paths, and paths come from disk
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `termmon summary | head`: the reader left; that is not an error worth a traceback.
        sys.stderr.close()
        return 0
    except Exception as exc:
        # A bug or an environment problem: one line for the user, the traceback on request.
        if os.environ.get("TERMMON_DEBUG"):
            raise
        print(
            f"termmon: error: {type(exc).__name__}: {terminal_text(exc)} (set TERMMON_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
