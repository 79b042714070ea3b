"""Built-in `:compare-models A.onnx B.onnx …`: next-word tables of several models side by side.

The epochs of one run (`recipe-repl train --keep-epochs` keeps an ONNX file per epoch) read the
same prompt ever better: epoch 1 vs 5 vs 60 is the lecture's "how the model learns" in one screen.
The models must share one vocabulary (ids mean the same words); each is opened for the command only,
one at a time (its column computed, then it is let go: six large models never sit in memory together),
and the session's own model stays loaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from recipe_repl.base.errors import BadValue, UsageError, UserError
from recipe_repl.generate.inspection import next_logits, reshapes, sampling_distribution
from recipe_repl.generate.loop import encode_prompt
from recipe_repl.model.engine import Engine
from recipe_repl.model.vocab import Vocabulary, detokenize
from recipe_repl.plugin.commands import rows_option, split_args
from recipe_repl.plugin.hookspecs import hookimpl
from recipe_repl.session.session import Session

USAGE = ":compare-models epochs | A.onnx [B.onnx …] [rows N]"
EXAMPLE = ":compare-models epochs"


def label(engine: Engine) -> str:
    """A column header: the file name, and the epoch it was exported after when the model says."""
    training = engine.info.training
    epoch = training.get("checkpoint_epoch") or training.get("epochs")
    return f"{engine.info.name} · epoch {epoch}" if isinstance(epoch, int) and epoch > 0 else engine.info.name


def check_vocabulary(a: Vocabulary, first: str, other: Engine) -> None:
    """A UserError when `other`'s vocabulary differs from `a` (the vocabulary of the model named `first`)."""
    b = other.vocab
    if a.words == b.words and a.lowercase == b.lowercase:
        return
    if len(a) != len(b):
        why = f"{len(a):,} and {len(b):,} words"
    elif a.words != b.words:
        k = next(i for i, (x, y) in enumerate(zip(a.words, b.words, strict=True)) if x != y)
        why = f"word {k} is {a.words[k]!r} in one, {b.words[k]!r} in the other"
    else:
        why = f"lower-cased {a.lowercase} vs {b.lowercase}"
    raise UserError(f"{first} and {other.info.name} have different vocabularies ({why}): "
                    ":compare-models needs models of one vocabulary, such as the epochs of one run "
                    "(recipe-repl train --keep-epochs)")


def _expand(pattern: str) -> list[Path]:
    """A path, the shipped epochs (`epochs`, unless a file of that name is here), or the files a pattern
    such as runs/mine/epochs/*.onnx matches (sorted); a pattern that matches nothing stays as it is, so
    the error names it."""
    import glob

    from recipe_repl.models import shipped_epochs

    path = Path(pattern).expanduser()
    if pattern.lower() == "epochs" and not path.exists():
        found = shipped_epochs()
        if not found:
            raise UserError("this installation ships no epochs of its model (`make epochs RUN=runs/shipped` puts "
                            "them in the package): name the files, e.g. :compare-models runs/mine/epochs/*.onnx")
        return found
    if not any(ch in pattern for ch in "*?["):
        return [path]
    found = sorted(Path(p) for p in glob.glob(str(path)))
    return [p for p in found if p.is_file()] or [path]


def _compare_models(session: Session, args: str) -> None:
    from recipe_repl.views import render

    names, rows = rows_option(split_args(args))
    paths = [path for p in names for path in _expand(p)]
    if not paths:
        raise UsageError()
    if len(paths) > render.MAX_COLUMNS:
        raise UsageError(f"at most {render.MAX_COLUMNS} models side by side, not {len(paths)}")
    prompt = session.prompt_to_read()
    if not prompt:
        raise UserError("no prompt yet: type a prompt (e.g. recipe for roast), then :compare-models A.onnx B.onnx")
    for path in paths:  # every path before any model is opened: a typo costs no loading
        if not path.is_file():
            raise BadValue(f"no model file {str(path)!r}")
    model = session.model
    first: tuple[Vocabulary, str] | None = None  # the first model's vocabulary and name, not the model
    specs = session.plugins.processor_specs()
    ids: list[int] = []
    columns: list[tuple[float, np.ndarray]] = []
    labels: list[str] = []

    def column(engine: Engine) -> None:
        nonlocal first, ids
        if first is None:
            first = (engine.vocab, engine.info.name)
            ids = encode_prompt(engine, prompt, session.max_prompt_tokens)
        check_vocabulary(*first, engine)
        columns.append((session.settings.temperature,
                        sampling_distribution(next_logits(engine, ids), ids, session.settings, specs, first[0])))
        labels.append(label(engine))

    if len(paths) == 1:
        column(session.engine)
    for path in paths:
        engine = session.plugins.load_model(path, model.provider, model.threads)
        column(engine)
        del engine  # one model open at a time: its column is all that is kept
    assert first is not None
    vocab = first[0]
    words = detokenize(vocab.decode_tokens(ids), capitalize=False)
    caption = (f"each model's distribution drawn from: {render.shaping(session.settings)}"
               if reshapes(session.settings, specs, vocab) else
               "each model's own distribution (temperature 1, no processors)")
    session.frontend.show(render.compare_table(vocab, columns, rows, title=render.after_title(words),
                                               caption=caption, labels=labels))


def _complete(session: Session, text: str) -> Iterable[str]:
    here = Path(text.rsplit(" ", 1)[-1] or ".").expanduser()
    folder = here if here.is_dir() else here.parent
    try:
        return ["epochs", *sorted(str(p) for p in folder.glob("*.onnx"))[:50]]
    except OSError:
        return ["epochs"]


@hookimpl
def register_commands(register: Any) -> None:
    """`:compare-models`."""
    register("compare-models", _compare_models, usage=USAGE, example=EXAMPLE, complete=_complete,
             help="next-word tables of several models (say, the epochs of one run) side by side",
             details="For the last prompt, at the current settings. `:compare-models epochs` takes the "
                     "epochs of the shipped model's run that come with the package (int8; 1, 2, 4, 8 and the "
                     "last). The models must share one vocabulary: `recipe-repl train --keep-epochs` exports one "
                     "per epoch into the run folder's epochs/ (`:compare-models runs/mine/epochs/*.onnx` takes "
                     "them all, up to 6). With one file, the loaded model is compared with it. `rows N`: rows "
                     "of the table (its own count; default 8).")
