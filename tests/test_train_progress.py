"""Progress reporting: plain lines off a terminal, a rich bar on one (no TensorFlow needed)."""

from __future__ import annotations

import io

from recipe_repl.train.callbacks import Progress

LOGS = {"loss": 2.5, "val_loss": 2.25, "val_perplexity": 9.49, "val_loss_unmasked": 4.0, "tokens_per_s": 5000.0,
        "seconds": 12.0}


def _drive(progress: Progress) -> None:
    progress.on_train_begin(epochs=2, start_epoch=1)
    progress.on_epoch_begin(2, steps=4)
    for step in range(1, 5):
        progress.on_step(2, step, 3.0 - step / 10, 4000.0)
    progress.on_epoch_end(2, LOGS)
    progress.on_train_end([LOGS])


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    _drive(Progress(out, every=2))
    lines = out.getvalue().splitlines()
    assert lines[0] == "resuming after epoch 1/2"
    assert lines[1].startswith("epoch 2/2 step 2/4 loss 2.8000 4,000 tok/s ETA")
    assert lines[-1] == ("epoch 2/2: loss 2.5000 val_loss 2.2500 val_perplexity 9.5 (unmasked val_loss 4.0000) "
                         "5,000 tok/s 12.0s")


def test_rich_bar_on_a_terminal_keeps_the_epoch_summary():
    out = io.StringIO()
    _drive(Progress(out, rich=True))
    text = out.getvalue()
    assert "resuming after epoch 1/2" in text
    assert "epoch 2/2: loss 2.5000 val_loss 2.2500" in text
