"""One rank of a two-process HF Trainer run (``torch.distributed.run``), for test_integration_hf.py.

Rank 0 plays the monitor at step 7: it asks for ``log_every=6`` through control.json. Every rank prints the
Trainer's final ``logging_steps`` and the steps it logged, so the test can see that both ranks followed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from transformers import Trainer, TrainerCallback

from termmon.integrations.hf import TermmonCallback
from tests.integration_helpers import release_process_group
from tests.test_integration_hf import AskForLogEvery, CharWindows, arguments, tiny_gpt2


class AskOnRankZero(AskForLogEvery):
    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            super().on_step_end(args, state, control, **kwargs)


def main() -> None:
    out = Path(sys.argv[1])
    callbacks: list[TrainerCallback] = [
        TermmonCallback(control_poll_s=0.0),
        AskOnRankZero(out / "tiny", at_step=7, log_every=6),
    ]
    trainer = Trainer(
        model=tiny_gpt2(),
        args=arguments(out, max_steps=14, per_device_train_batch_size=4),
        train_dataset=CharWindows(64),
        callbacks=callbacks,
    )
    trainer.train()
    logged = [h["step"] for h in trainer.state.log_history if "loss" in h]
    print(
        "RESULT "
        + json.dumps(
            {
                "rank": trainer.args.process_index,
                "logging_steps": trainer.state.logging_steps,
                "logged": logged,
            }
        )
    )
    del trainer, callbacks  # the DDP-wrapped model holds the process group
    release_process_group()


if __name__ == "__main__":
    main()
