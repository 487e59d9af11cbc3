"""``termmon --static``: images with matplotlib, text with plotext, the same panels as the TUI."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from termmon.cli import main
from termmon.errors import UsageError
from termmon.views.static import render_static
from tests.tui_fixtures import diverging, no_diagnostics, workspace_dir


def test_png_has_four_non_blank_panels(tmp_path: Path) -> None:
    from matplotlib.image import imread

    out = tmp_path / "plot.png"
    assert render_static([str(workspace_dir(tmp_path / "runs"))], out, None) == 0
    image = imread(out)
    assert image.shape[:2] == (850, 1300)
    h, w = image.shape[0] // 2, image.shape[1] // 2
    for quadrant in (image[:h, :w], image[:h, w:], image[h:, :w], image[h:, w:]):
        rgb = quadrant[..., :3]
        coloured = (rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.2  # line colours, not grey axes or white
        assert coloured.mean() > 0.002


def test_nan_markers_in_png(tmp_path: Path) -> None:
    from matplotlib.image import imread

    out = tmp_path / "nan.png"
    render_static([str(diverging(tmp_path / "runs" / "div"))], out, None)
    rgb = imread(out)[..., :3]
    red = (rgb[..., 0] > 0.9) & (rgb[..., 1] < 0.35) & (rgb[..., 2] < 0.35)
    assert red[:425, :650].sum() > 20  # the loss panel (first, top left) carries the red NaN/Inf crosses


@pytest.mark.parametrize(("suffix", "magic"), [(".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_svg_and_pdf(tmp_path: Path, suffix: str, magic: bytes) -> None:
    out = tmp_path / f"plot{suffix}"
    assert main(["--static", "--output", str(out), str(workspace_dir(tmp_path / "runs"))]) == 0
    assert out.read_bytes().startswith(magic)


def test_bad_extension_and_missing_path_are_usage_errors(tmp_path: Path) -> None:
    runs = workspace_dir(tmp_path / "runs")
    with pytest.raises(UsageError):
        render_static([str(runs)], tmp_path / "plot.gif", None)
    with pytest.raises(UsageError):
        render_static([str(tmp_path / "missing")], None, None)
    assert main(["--static", "-o", str(tmp_path / "x.bmp"), str(runs)]) == 2


def test_text_render_of_a_run_without_diagnostics_charts_its_own_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render_static([str(no_diagnostics(tmp_path / "lora"))], None, None) == 0
    out = capsys.readouterr().out
    # Panels follow the run: its loss, lr and grad norm, not three boxes of instructions.
    assert "loss" in out and "learning rate" in out and "grad norm" in out
    assert "silhouette" not in out and "enable_diagnostics" not in out
    assert "\x1b[" not in out  # not a terminal: plain text for a pipe or a CI log


def test_text_render_marks_nonfinite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    render_static([str(diverging(tmp_path / "div"))], None, None)
    assert "NaN/Inf" in capsys.readouterr().out


def test_without_matplotlib_png_falls_back_to_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an install without matplotlib sees
    out = tmp_path / "plot.png"
    assert render_static([str(workspace_dir(tmp_path / "runs"))], out, None) == 0
    assert not out.exists()
    assert "matplotlib is not installed" in capsys.readouterr().err
    text = out.with_suffix(".txt").read_text()
    assert "silhouette score" in text and "loss" in text


def test_static_and_tui_share_panel_data(tmp_path: Path) -> None:
    """The same run gives the same loss series in both views (they cannot drift)."""
    from termmon.views.panels import DIAGNOSTICS_PANELS
    from termmon.views.static import build_panels, load

    runs, feed = load([str(workspace_dir(tmp_path / "runs"))], None)
    assert runs[0].name == "blobs_a"  # the run with diagnostics: seed 001's four panels
    static_loss = build_panels(runs[:1], feed, max_points=10_000)[3]
    series = runs[0].series("train_loss")
    assert series is not None
    trace = next(t for t in static_loss.traces if t.metric == "train_loss")
    assert np.array_equal(trace.points.y, series.value)
    assert static_loss.spec == DIAGNOSTICS_PANELS[3]


def test_loss_spanning_many_decades_is_drawn_on_a_log_axis(tmp_path: Path) -> None:
    import json

    import matplotlib

    from termmon.views.static import render_static

    for name, scale in (("calm", 1.0), ("diverged", 1e20)):
        run = tmp_path / "runs" / name
        run.mkdir(parents=True)
        lines = [
            {"event": "step", "step": i, "train_loss": 0.5 + (scale if i > 40 else 0.0)} for i in range(50)
        ]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    both, calm = tmp_path / "both.svg", tmp_path / "calm.svg"
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # keep titles as text in the SVG
        assert render_static([str(tmp_path / "runs")], output=both, config=None) == 0
        assert render_static([str(tmp_path / "runs" / "calm")], output=calm, config=None) == 0
    drawn = both.read_text()
    assert "loss (log)" in drawn
    assert ">1e20<" in drawn  # ticks say values, compactly: not "20" (an exponent) nor 21 digits
    assert "(log)" not in calm.read_text()


def test_text_render_escapes_run_names_in_the_legend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two runs overlay, so the legend prints their names: an OSC sequence in one is shown, not sent."""
    lines = '{"event":"start","time":1}\n' + "".join(
        f'{{"event":"step","step":{i},"time":{i},"train_loss":{1 / i}}}\n' for i in range(1, 20)
    )
    for name in ("run\x1b]0;PWNED\x07x", "plain"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.jsonl").write_text(lines)
    assert render_static([str(tmp_path)], None, None) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "run\\x1b]0;PWNED\\x07x" in out
