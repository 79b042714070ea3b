"""What happens around the training loop: progress on stderr, per-epoch samples, checkpoints, CSV log.

Callbacks receive plain numbers; none of them touches TensorFlow except the checkpointer and the
sampler, which call the Keras model they are given.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from recipe_repl.base.sanitize import clean
from recipe_repl.base.settings import Settings
from recipe_repl.model.vocab import Vocabulary

if TYPE_CHECKING:
    from recipe_repl.model.engine import Engine


class Callback:
    """What happens around the training loop; every hook does nothing unless overridden."""

    def set_model(self, model: Any, vocab: Vocabulary) -> None: ...  # the Keras model in training, once built
    def on_train_begin(self, epochs: int, start_epoch: int) -> None: ...
    def on_epoch_begin(self, epoch: int, steps: int) -> None: ...
    def on_step(self, epoch: int, step: int, loss: float, tokens_per_s: float) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None: ...
    def on_train_end(self, history: list[dict[str, Any]]) -> None: ...


def keras_engine(model: Any, vocab: Vocabulary) -> Any:
    """The Keras model behind the runtime's engine interface (re-feeding the prefix, as the lecture does)."""
    from recipe_repl.train.model import compiled_forward

    from recipe_repl.model.engine import ModelInfo, PrefixEngine

    return PrefixEngine(vocab, ModelInfo("keras model in training", "stateless", "cpu", len(vocab)),
                        compiled_forward(model))


def sample_text(engine: Any, prompt: str = "recipe for", temperature: float = 1.0, max_tokens: int = 60,
                seed: int | None = None) -> str:
    """One sample, by the same code as `recipe-repl generate PROMPT -t T --max-tokens N --seed S`."""
    from recipe_repl.session.samples import generate_samples

    settings = Settings(temperature=temperature, max_tokens=max_tokens, seed=seed)
    return generate_samples(engine, prompt, settings)[0].text


class Progress(Callback):
    """Epoch/step/loss/val loss/tokens per second/ETA: a rich bar on a terminal, plain lines otherwise."""

    def __init__(self, stream: IO[str] | None = None, rich: bool | None = None, every: int = 50):
        self.stream = stream or sys.stderr
        self.rich = self.stream.isatty() if rich is None else rich
        self.every = every
        self._progress: Any = None
        self._task = None
        self._epochs = 0
        self._t0 = 0.0
        self._steps = 0

    def on_train_begin(self, epochs: int, start_epoch: int) -> None:
        self._epochs = epochs
        if start_epoch:
            self._line(f"resuming after epoch {start_epoch}/{epochs}")
        if self.rich:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("epoch {task.fields[epoch]}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[tps]:,.0f} tok/s"),
                TimeRemainingColumn(), console=Console(file=self.stream), transient=True,
            )
            self._progress.start()

    def on_epoch_begin(self, epoch: int, steps: int) -> None:
        self._t0, self._steps = time.perf_counter(), steps
        if self._progress is not None:
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._task = self._progress.add_task("train", total=steps, epoch=f"{epoch}/{self._epochs}",
                                                 loss=float("nan"), tps=0.0)

    def on_step(self, epoch: int, step: int, loss: float, tokens_per_s: float) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=step, loss=loss, tps=tokens_per_s)
        elif self.every and step % self.every == 0:
            eta = (time.perf_counter() - self._t0) / step * (self._steps - step)
            self._line(f"epoch {epoch}/{self._epochs} step {step}/{self._steps} loss {loss:.4f} "
                       f"{tokens_per_s:,.0f} tok/s ETA {eta:.0f}s")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self._line(
            f"epoch {epoch}/{self._epochs}: loss {logs['loss']:.4f} val_loss {logs['val_loss']:.4f} "
            f"val_perplexity {logs['val_perplexity']:.1f} (unmasked val_loss {logs['val_loss_unmasked']:.4f}) "
            f"{logs['tokens_per_s']:,.0f} tok/s {logs['seconds']:.1f}s"
        )

    def on_train_end(self, history: list[dict[str, Any]]) -> None:
        if self._progress is not None:
            self._progress.stop()

    def _line(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)


class SamplePrinter(Callback):
    """After each epoch, a sample from "recipe for" at temperature 1.0 (the lecture's TextGenerator)."""

    def __init__(self, model: Any, vocab: Vocabulary, stream: IO[str] | None = None, every: int = 1,
                 max_tokens: int = 60, seed: int = 0) -> None:
        self.engine = keras_engine(model, vocab)
        self.model, self.vocab, self.every, self.max_tokens, self.seed = model, vocab, every, max_tokens, seed
        self.stream = stream or sys.stderr
        self.samples: list[str] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.every and epoch % self.every == 0:
            text = sample_text(self.engine, "recipe for", 1.0, self.max_tokens, self.seed + epoch)
            self.samples.append(text)
            print(f"sample (T=1.0): {clean(text)}", file=self.stream, flush=True)  # the corpus's words


DEFAULT_PROBE = "recipe for chocolate ice cream |"
PROBE_WORDS = 5


class ProbePrinter(Callback):
    """After each epoch, the next-word table for one fixed prompt, as one line (`train --probe`).

    Read down the epochs, the lines show the model learning what follows the prompt. The table is
    the runtime sampler's distribution at temperature 1 (what `:probs` would show), computed on the
    model in training through the engine interface, as the samples are. `train` prints it by default
    (unless --quiet or --no-probe): it costs one forward pass of a few words per epoch, one line
    beside the sample, and it is the lecture's "how the model learns" without any extra step.
    """

    def __init__(self, prompt: str = DEFAULT_PROBE, stream: IO[str] | None = None, words: int = PROBE_WORDS):
        self.prompt, self.words = prompt, words
        self.stream = stream or sys.stderr
        self.engine: Engine | None = None
        self.ids: list[int] = []
        self.lines: list[str] = []

    def set_model(self, model: Any, vocab: Vocabulary) -> None:
        from recipe_repl.base.errors import UserError

        self.ids = vocab.encode(self.prompt)
        if not self.ids:
            raise UserError(f"--probe {self.prompt!r} has no words the model reads")
        self.engine = keras_engine(model, vocab)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.engine is None:
            return
        line = f"probe “{self.prompt}” → {probe_line(self.engine, self.ids, self.words)}"
        self.lines.append(line)
        print(clean(line), file=self.stream, flush=True)


def probe_line(engine: Engine, ids: list[int], words: int = PROBE_WORDS) -> str:
    """The `words` likeliest next words after `ids` at temperature 1: "mix 12.0% · in 8.1% · …"."""
    from recipe_repl.generate.inspection import model_distribution, next_logits
    from recipe_repl.generate.loop import top_words
    from recipe_repl.views.render import END_MARKER, percent

    probs = model_distribution(next_logits(engine, ids))
    return " · ".join(f"{engine.vocab.words[i] or END_MARKER} {percent(p)}" for i, p in top_words(probs, words))


def plot_loss_curve(history: list[dict[str, Any]], path: Path) -> None:
    """Train and validation loss per epoch, as a PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recipe_repl.base import atomic

    epochs = [r["epoch"] for r in history]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(epochs, [r["loss"] for r in history], marker="o", label="train (masked)")
    ax.plot(epochs, [r["val_loss"] for r in history], marker="o", label="validation (masked)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic.atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
