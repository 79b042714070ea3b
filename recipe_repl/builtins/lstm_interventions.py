"""Built-in interventions inside the LSTM: :ablate, :clamp, :patch — change a unit, watch the next word.

`:ablate h 17 40` holds units of h (or c) at 0 from a word onward, `:clamp c 190 5.0` at a value:
the next-word table after the last prompt before and after, side by side, and the continuation
drawn twice from the same random numbers, as trained and as changed. The session then runs on the
changed model (a NumPy copy of the LSTM, `model/numpy_lstm.NumpyEngine`) until `:ablate off`;
plain generation never goes through it. `:patch N "OTHER PROMPT"` reads on from word N of the last
text with the state the model has after OTHER PROMPT (the title-swap experiment).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from recipe_repl.base.errors import BadValue, UsageError
from recipe_repl.generate.inspection import model_distribution, next_logits
from recipe_repl.generate.loop import Sample, encode_prompt
from recipe_repl.generate.numbering import word_index
from recipe_repl.model.vocab import detokenize
from recipe_repl.plugin.commands import split_args
from recipe_repl.plugin.hookspecs import hookimpl
from recipe_repl.session.session import Session

if TYPE_CHECKING:  # the arithmetic is imported when a command runs: start-up never pays for it
    from recipe_repl.model.numpy_lstm import Intervention

KINDS = ("h", "c")

LIMITS = {"h": 1.0, "c": 50.0}  # |value| a unit may be clamped to: h = o·tanh(c) stays within ±1


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BadValue(f"{what} must be a number, not {text!r}") from None
    if not math.isfinite(value):
        raise BadValue(f"{what} must be a finite number")
    return value


def _from(parts: list[str]) -> tuple[list[str], int]:
    """A trailing `from N` (the first word held; 1 by default)."""
    if len(parts) >= 2 and parts[-2].lower() == "from":
        try:
            start = int(parts[-1])
        except ValueError:
            raise BadValue(f"from takes a word number, not {parts[-1]!r}") from None
        if start < 1:
            raise BadValue("from takes a word number from 1 (the first word of the text)")
        return parts[:-2], start
    return parts, 1


def _units(texts: Sequence[str], count: int, command: str) -> list[int]:
    units: list[int] = []
    for text in texts:
        try:
            unit = int(text)
        except ValueError:
            raise BadValue(f"a unit is a number, not {text!r}") from None
        if not 0 <= unit < count:
            raise BadValue(f"no unit {unit}: this model's LSTM has {count} units, numbered 0 to {count - 1}",
                           example=f"{command} {min(17, count - 1)}")
        if unit not in units:
            units.append(unit)
    return units


def _ablate(session: Session, args: str) -> None:
    from recipe_repl.generate.interventions import base_engine
    from recipe_repl.generate.lstm_model import lstm_model
    from recipe_repl.model.numpy_lstm import Intervention, NumpyEngine

    parts = args.split()
    engine = session.engine
    if not parts:
        held = engine.intervention if isinstance(engine, NumpyEngine) else None
        session.say(f"held: {held.describe()} (:ablate off restores the model)" if held
                    else "no unit held: the model as trained (:ablate h UNIT… holds units at 0)")
        return
    if parts[0].lower() == "off":
        if len(parts) > 1:
            raise UsageError("nothing expected after off")
        if not isinstance(engine, NumpyEngine):
            session.say("no unit held: the model is as trained")
            return
        session.use_engine(base_engine(engine))
        session.say(f"{engine.intervention.describe() if engine.intervention else 'nothing'} released: "
                    "the model as trained again")
        return
    kind = parts[0].lower() if parts[0].lower() in KINDS else "h"
    rest, start = _from(parts[1:] if parts[0].lower() in KINDS else parts)
    if not rest:
        raise UsageError("which units?")
    model = lstm_model(engine)
    units = _units(rest, model.units, f":ablate {kind}")
    _apply(session, Intervention(kind, tuple((u, 0.0) for u in units), start))


def _clamp(session: Session, args: str) -> None:
    from recipe_repl.generate.lstm_model import lstm_model
    from recipe_repl.model.numpy_lstm import Intervention

    parts, start = _from(args.split())
    if len(parts) != 3 or parts[0].lower() not in KINDS:
        raise UsageError("h or c, one unit and a value")
    kind = parts[0].lower()
    model = lstm_model(session.engine)
    [unit] = _units(parts[1:2], model.units, f":clamp {kind}")
    value = _number(parts[2], "the value")
    if abs(value) > LIMITS[kind]:
        raise BadValue(f"a unit of {kind} can be clamped to −{LIMITS[kind]:g} … {LIMITS[kind]:g}, not {value:g}")
    _apply(session, Intervention(kind, ((unit, value),), start))


def _apply(session: Session, intervention: Intervention) -> None:
    """Hold the units, show the table and the twin continuations after the last prompt, and stay held."""
    from recipe_repl.generate.interventions import base_engine, intervened, twin_samples
    from recipe_repl.generate.lstm_model import lstm_model

    model = lstm_model(session.engine)
    base = base_engine(session.engine)
    changed = intervened(model, intervention)
    prompt = session.prompt_to_read()
    if prompt:
        ids = encode_prompt(base, prompt, session.max_prompt_tokens)
        before = model_distribution(next_logits(base, ids))
        after = model_distribution(next_logits(changed, ids))
        twins = twin_samples([base, changed], prompt, session.settings, session.plugins.processor_specs(),
                             session.max_prompt_tokens, key=_key(session))
        note = "the output layer is int8, its weights read dequantized" if model.weights.int8_output else ""
        _show(session, ids, before, after, ["as trained", intervention.describe()], twins, note)
    session.use_engine(changed)
    if prompt:
        session.remember(prompt, [twins[1]])
    session.say(f"held: {intervention.describe()} — prompts and views now run on the changed model "
                "(:ablate off restores it)")


def _key(session: Session) -> int:
    """The last sample's number: with a seed, the unchanged twin of a continuation from the prompt is that
    sample itself."""
    return session.last_samples[0].key if session.last_samples else 0


def _show(session: Session, ids: Sequence[int], before: Any, after: Any, labels: list[str], twins: list[Sample],
          note: str = "") -> None:
    from rich.console import Group
    from rich.text import Text

    from recipe_repl.views import render

    vocab = session.engine.vocab
    title = render.after_title(detokenize(vocab.decode_tokens(list(ids)), capitalize=False))
    table = render.compare_table(vocab, [(1.0, before), (1.0, after)], session.settings.probs_n, title=title,
                                 labels=labels, caption="the model's own probabilities (temperature 1, no processors)"
                                 + (f" · {note}" if note else ""))
    width = max(len(label) for label in labels)
    lines = [Text(f"the continuation, drawn twice from the same random numbers ({render.shaping(session.settings)}):",
                  style="bold")]
    for label, sample in zip(labels, twins, strict=True):
        line = Text(f"{label:>{width}} │ ", style="dim")
        line.append_text(render.styled(sample.continuation))
        line.append(f"  [{sample.stop_reason.value}]", style="dim")
        lines.append(line)
    session.frontend.show(Group(table, *lines))


def _patch(session: Session, args: str) -> None:
    from recipe_repl.generate.interventions import patched_resume, resume_after, twin_samples
    from recipe_repl.generate.lstm_model import lstm_model

    parts = split_args(args)
    if len(parts) < 2:
        raise UsageError("a word number and a prompt")
    engine = session.engine
    lstm_model(engine)  # a stateless or foreign model: the views' one message
    text = session.text_for("patch")
    read = text.ids()  # a word the model read: not the stop token
    k = word_index(parts[0], len(read), ":patch", rest=f' "{parts[1]}"' if len(parts) == 2 else "",
                   source=text.source) + 1
    other_text = " ".join(parts[1:])
    other = encode_prompt(engine, other_text, session.max_prompt_tokens)
    words = text.tokens()[:k]
    plain = resume_after(engine, read[:k], words)
    patched = patched_resume(engine, read[:k], words, other)
    assert plain.logits is not None and patched.logits is not None
    prompt = session.prompt_to_read() or detokenize(words)
    twins = twin_samples([engine, engine], prompt, session.settings, session.plugins.processor_specs(),
                         session.max_prompt_tokens, resumes=[plain, patched], key=_key(session))
    other_words = detokenize(engine.vocab.decode_tokens(other), capitalize=False)
    short = other_words if len(other_words) <= 30 else "…" + other_words[-29:]
    _show(session, read[:k], model_distribution(plain.logits), model_distribution(patched.logits),
          [f"word {k}'s own state", f"state after “{short}”"], twins)
    session.remember(prompt, [twins[1]])
    session.say(f"patched: from word {k} on, the model read on from its state after “{other_words}” "
                "(:continue goes on with the patched text)")


def _complete_ablate(session: Session, text: str) -> Iterable[str]:
    return ["off", "h", "c"]


@hookimpl
def register_commands(register: Any) -> None:
    """:ablate, :clamp, :patch."""
    register("ablate", _ablate, usage=":ablate [h|c] UNIT… [from N] | off", example=":ablate c 190",
             complete=_complete_ablate,
             help="hold LSTM units at 0 and compare the next word and the continuation; :ablate off restores",
             details="Units of h (default) or c are set to 0 at every word the model reads from word N on "
                     "(default 1; c is changed after its update and h recomputed from it). Shows the table after "
                     "the last prompt as trained and as changed, side by side (the model's own probabilities), "
                     "and the continuation drawn twice from the same random numbers. Prompts and the views then "
                     "run on the changed model (a NumPy copy of the LSTM; plain generation is untouched) until "
                     ":ablate off, or another model or provider is loaded. Each :ablate or :clamp replaces the "
                     "units held before; :ablate alone says which are.")
    register("clamp", _clamp, usage=":clamp h|c UNIT VALUE [from N]", example=":clamp c 190 5.0",
             help="hold one unit of h or c at VALUE and compare (as :ablate); :ablate off restores",
             details="VALUE is −1 … 1 for h, −50 … 50 for c.")
    register("patch", _patch, usage=':patch N "OTHER PROMPT"', example=':patch 5 "recipe for chocolate cake |"',
             help="read on from word N of the last text with the state after OTHER PROMPT instead",
             details="The title-swap experiment: after `recipe for roast chicken |` and a sample, "
                     ':patch 5 "recipe for chocolate cake |" gives the next word after word 5 from its own state '
                     "and from the patched one, side by side, and the continuation drawn twice from the same "
                     "random numbers. Patching a state onto itself changes nothing.")
