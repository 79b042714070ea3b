"""Built-in `:compare-models A.onnx B.onnx …`: next-word tables of several models side by side.

The epochs of one run (`recipe-repl train --keep-epochs` keeps an ONNX file per epoch) read the
same prompt ever better: epoch 1 vs 5 vs 60 is the lecture's "how the model learns" in one screen.
The models must share one vocabulary (ids mean the same words); each is opened for the command only
and the session's own model stays loaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from recipe_repl.base.errors import BadValue, UsageError, UserError
from recipe_repl.generate.inspection import next_logits, reshapes, sampling_distribution
from recipe_repl.generate.loop import encode_prompt
from recipe_repl.model.engine import Engine
from recipe_repl.model.vocab import detokenize
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


def same_vocabulary(engines: list[Engine]) -> None:
    """A UserError naming the first model whose vocabulary differs from the first one's."""
    first = engines[0]
    for other in engines[1:]:
        a, b = first.vocab, other.vocab
        if a.words == b.words and a.lowercase == b.lowercase:
            continue
        if len(a) != len(b):
            why = f"{len(a):,} and {len(b):,} words"
        elif a.words != b.words:
            k = next(i for i, (x, y) in enumerate(zip(a.words, b.words, strict=True)) if x != y)
            why = f"word {k} is {a.words[k]!r} in one, {b.words[k]!r} in the other"
        else:
            why = f"lower-cased {a.lowercase} vs {b.lowercase}"
        raise UserError(f"{first.info.name} and {other.info.name} have different vocabularies ({why}): "
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
    model = session.model
    engines: list[Engine] = [session.engine] if len(paths) == 1 else []
    for path in paths:
        if not path.is_file():
            raise BadValue(f"no model file {str(path)!r}")
        engines.append(session.plugins.load_model(path, model.provider, model.threads))
    same_vocabulary(engines)
    vocab = engines[0].vocab
    ids = encode_prompt(engines[0], prompt, session.max_prompt_tokens)
    specs = session.plugins.processor_specs()
    columns = [(session.settings.temperature,
                sampling_distribution(next_logits(engine, ids), ids, session.settings, specs, vocab))
               for engine in engines]
    words = detokenize(vocab.decode_tokens(ids), capitalize=False)
    caption = (f"each model's distribution drawn from: {render.shaping(session.settings)}"
               if reshapes(session.settings, specs, vocab) else
               "each model's own distribution (temperature 1, no processors)")
    session.frontend.show(render.compare_table(vocab, columns, rows, title=render.after_title(words),
                                               caption=caption, labels=[label(e) for e in engines]))


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
