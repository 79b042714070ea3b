"""Built-in teaching commands: :probs, :compare, :pick — the lecture's probability figures, live.

`:probs` and `:compare` work in batch mode too (their tables go to stderr through `frontend.show`);
`:pick` needs a person at the keyboard. The tables come from the same `Sampler` as generation, so
what they show is exactly what is drawn from; `:pick` runs the one generation loop with a chooser
that asks the person instead of drawing.

`render` (and with it rich) is imported inside the functions that draw tables, so batch mode,
which loads these commands at start-up, does not pay for rich unless a table is shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from recipe_repl.base.errors import BadValue, UsageError
from recipe_repl.base.settings import PROBS_MODES
from recipe_repl.generate.inspection import (
    model_distribution,
    next_logits,
    reshapes,
    sampling_distribution,
    tables_after,
)
from recipe_repl.generate.loop import STOP_HERE, Step, StopReason
from recipe_repl.model.vocab import PAD_ID, UNK_ID, UNK_TOKEN, detokenize
from recipe_repl.plugin.commands import COMPARE_ROWS, count_arg, rows_option
from recipe_repl.plugin.hookspecs import hookimpl
from recipe_repl.session.session import Session

# --- :probs ------------------------------------------------------------------------------------------


def _probs(session: Session, args: str) -> None:
    from recipe_repl.views import render

    parts = args.split()
    if len(parts) > 2:
        raise UsageError("too many arguments")
    if parts and parts[0].lower() in PROBS_MODES:
        changes: dict[str, Any] = {"probs": parts[0].lower()}
        if len(parts) == 2:
            changes["probs_n"] = count_arg(parts[1], "the number of rows")
        session.update(**changes)
        s = session.settings
        what = {"off": "no probability tables during generation",
                "first": f"a table of the {s.probs_n} most likely words for the first generated word",
                "every": f"a table of the {s.probs_n} most likely words at every step"}[s.probs]
        session.say(f"probs = {s.probs}: {what}")
        return
    if len(parts) == 2:
        raise UsageError(f"{parts[0]!r} is not every, first or off")
    n = count_arg(parts[0], "the number of rows") if parts else session.settings.probs_n
    prompt, ids = session.prompt_ids_for("probs")
    tables = tables_after(session.engine, session.plugins.processor_specs(), ids, session.settings)
    words = detokenize(session.engine.vocab.decode_tokens(ids), capitalize=False)
    session.frontend.show(render.prob_table(session.engine.vocab, tables.sampling, n, title=render.after_title(words),
                                            caption=render.columns_caption(tables.settings, tables.reshaped),
                                            model=tables.model if tables.reshaped else None))


def _probs_complete(session: Session, text: str) -> Iterable[str]:
    return [*PROBS_MODES, "5", "10", "20"]


# --- :compare ----------------------------------------------------------------------------------------


def _compare(session: Session, args: str) -> None:
    from recipe_repl.views import render

    parts, rows = rows_option(args.replace(",", " ").split())
    parts = parts or ["1.0", "0.2"]
    if len(parts) > render.MAX_COLUMNS:
        raise BadValue(f":compare shows at most {render.MAX_COLUMNS} temperatures side by side")
    temperatures = []
    for p in parts:
        try:
            t = float(p)
        except ValueError:
            raise BadValue(f"temperatures must be numbers, not {p!r}") from None
        if not 0 <= t <= 5:  # also rejects NaN
            raise BadValue("temperatures must be between 0 and 5")
        temperatures.append(t)
    prompt, ids = session.prompt_ids_for("compare")
    engine, specs = session.engine, session.plugins.processor_specs()
    logits = next_logits(engine, ids)
    columns = [(t, sampling_distribution(logits, ids, session.settings.replace(temperature=t), specs, engine.vocab))
               for t in temperatures]
    model = model_distribution(logits)
    # the model's own column, unless one of the columns already is it (T = 1 and nothing else applied)
    others_apply = reshapes(session.settings.replace(temperature=1.0), specs, engine.vocab)
    with_model = others_apply or 1.0 not in temperatures
    words = detokenize(engine.vocab.decode_tokens(ids), capitalize=False)
    others = render.shaping(session.settings).partition(" · ")[2]
    notes = ([f"{render.MODEL_LABEL}: temperature 1, no processors"] if with_model else []) + \
        ([f"the T columns also apply {others}"] if others else [])
    session.frontend.show(render.compare_table(engine.vocab, columns, rows, title=render.after_title(words),
                                               caption=" · ".join(notes) or None,
                                               model=model if with_model else None))


def _compare_complete(session: Session, text: str) -> Iterable[str]:
    return ["1.0", "0.2", "0.5", "1.5", "0"]


# --- :pick -------------------------------------------------------------------------------------------

PICK_HELP = "a number picks that word · Enter lets the sampler pick · a word (=word for a number) · s stops"


def _pick(session: Session, args: str) -> None:
    from recipe_repl.views import render

    parts = args.split()
    if len(parts) > 1:
        raise UsageError("too many arguments")
    n = count_arg(parts[0], "the number of choices") if parts else session.settings.probs_n
    prompt = session.prompt_or_ask("pick")
    session.say(f"choose the next word: {PICK_HELP}")
    chooser = PickChooser(session, n)
    [sample] = session.run_requests([prompt], chooser=chooser, live=False)
    if sample.stop_reason == StopReason.STOP_TOKEN:
        session.say(f"the stop token ({render.percent(chooser.stop_prob)}) ends the recipe")
    elif sample.stop_reason == StopReason.STOP_STRING and session.settings.stop:
        session.say(f"the stop string “{render.safe(session.settings.stop)}” ends the recipe")


class PickChooser:
    """`:pick`'s chooser for the generation loop: shows the numbered table and asks the person.

    Enter lets the sampler choose (with the sample's own seeded generator, exactly as a plain
    generation would); a typed word that is several tokens ("1/2") is fed one token per step.
    """

    def __init__(self, session: Session, n: int) -> None:
        self.session, self.n = session, n
        self.reshaped = reshapes(session.settings, session.plugins.processor_specs(), session.engine.vocab)
        self.queue: list[int] = []  # the rest of a typed multi-token word
        self.stop_prob = 0.0  # the stop token's probability when it was chosen

    def __call__(self, step: Step) -> list[int]:
        """The next token of the one row, or STOP_HERE."""
        from recipe_repl.views import render

        probs = step.probs[0]
        if self.queue:
            token = self.queue.pop(0)
        else:
            vocab = self.session.engine.vocab
            text = detokenize(vocab.decode_tokens(step.history[0]), capitalize=False)
            model = model_distribution(step.logits[0]) if step.logits is not None and self.reshaped else None
            shown = render.top_ids(probs, self.n) if model is None else render.top_ids_by(probs, model, self.n)
            self.session.frontend.show(render.prob_table(
                vocab, probs, self.n, title=render.after_title(text), numbered=True, model=model,
                caption=render.columns_caption(self.session.settings, self.reshaped)))
            picked = _ask_choice(self.session, shown, step)
            if picked is None:
                return [STOP_HERE]
            token, self.queue = picked[0], picked[1:]
        if token == PAD_ID:
            self.stop_prob = float(probs[PAD_ID])
        return [token]


def _ask_choice(session: Session, shown: list[int], step: Step) -> list[int] | None:
    """Ask until the answer is usable (`shown`: the table's rows, by number); return the token ids to
    feed, or None to stop."""
    from recipe_repl.views import render

    vocab = session.engine.vocab
    while True:
        try:
            answer = session.frontend.ask(f"pick 1-{len(shown)}, Enter, a word or s: ").strip()
        except (KeyboardInterrupt, EOFError):
            return None
        if answer.lower() == "s":
            return None
        if answer == "":
            return [int(step.draw()[0])]
        if answer.isdigit():
            k = int(answer)
            if 1 <= k <= len(shown):
                return [shown[k - 1]]
            session.frontend.message(f"choose 1 to {len(shown)} (type =WORD to use a number as a word)", "warning")
            continue
        word = answer[1:] if answer.startswith("=") else answer
        pieces = vocab.prepare(word)
        if not pieces:
            session.frontend.message(PICK_HELP, "warning")
            continue
        picked = [vocab.id_of(p) for p in pieces]
        unknown = [p for p, i in zip(pieces, picked, strict=True) if i == UNK_ID]
        if unknown:
            session.frontend.message(
                f"{', '.join(repr(render.safe(u)) for u in unknown)} is not in the vocabulary: "
                f"the model reads {UNK_TOKEN}", "warning")
        return picked


def _pick_complete(session: Session, text: str) -> Iterable[str]:
    return ["5", "10"]


@hookimpl
def register_commands(register: Any) -> None:
    """The teaching commands."""
    register("probs", _probs, usage=":probs [N] | every|first|off [N]", example=":probs 10",
             help="the N most likely next words; every/first/off: tables while generating",
             details="`:probs N` shows the N most likely words after the last prompt: the model's own "
                     "probability (temperature 1, no processors) and, when the settings reshape it, the one at the "
                     "current temperature, top-k/top-p and plugin processors: exactly what the sampler draws from "
                     "(at temperature 0 the runners-up come from the model's column). `:probs every [N]` "
                     "shows such a table at every step of a generation, `:probs first [N]` for the first word "
                     "only, `:probs off` none. The stop token appears as ⏹ [end].",
             complete=_probs_complete)
    register("compare", _compare, usage=":compare T1 T2 … [rows N]", example=":compare 1.0 0.2",
             help="next-word tables at several temperatures side by side (default 1.0 0.2)",
             details=f"The {COMPARE_ROWS} most likely words of each column unless `rows N` says otherwise "
                     "(its own count: :probs never changes it).",
             complete=_compare_complete)
    register("pick", _pick, usage=":pick [N]", example=":pick 5", interactive_only=True,
             help="choose each next word yourself from the N most likely",
             details=PICK_HELP, complete=_pick_complete)
