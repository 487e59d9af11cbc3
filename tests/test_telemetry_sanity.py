"""Data sanity checks through ``Telemetry``: every batch counts, and the first bad one keeps its step."""

from __future__ import annotations

from pathlib import Path

import torch

from termmon import Telemetry
from tests.telemetry_helpers import events


def test_checks_between_log_steps_are_aggregated_and_the_first_bad_batch_keeps_its_step(
    tmp_path: Path,
) -> None:
    with Telemetry(log_dir=tmp_path, run_name="sanity", log_every=10) as tm:
        for step in range(1, 21):
            bad = step in (3, 7)
            top = torch.tensor(5 if bad else 3) if step % 2 else (5 if bad else 3)  # tensors and numbers
            tm.step(loss=1.0, data_sanity_check={"label_min": 0, "label_max": top, "n_codes": 4})
    steps = [r for r in events(tmp_path / "sanity", "step") if "data_sanity_check/label_max" in r]
    assert [r["step"] for r in steps] == [3, 10, 20]
    first_bad, interval, clean = steps
    assert first_bad["data_sanity_check/label_max"] == 5 and "train_loss" not in first_bad
    assert interval["data_sanity_check/label_max"] == 5  # the worst of the interval, not the last batch
    assert (interval["data_sanity_check/bad_batches"], interval["data_sanity_check/batches"]) == (2, 10)
    assert clean["data_sanity_check/bad_batches"] == 0 and clean["data_sanity_check/label_max"] == 3
