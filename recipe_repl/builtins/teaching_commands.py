"""Built-in teaching commands: :probs, :compare, :pick — the lecture's probability figures, live.

`:probs` and `:compare` work in batch mode too (their tables go to stderr through `frontend.show`);
`:pick` needs a person at the keyboard. All three read the model directly through the engine
(`engine.start`, `engine.forward`) and the same processor chain as the sampler, so what they show
is exactly what the sampler would draw from.

`render` (and with it rich) is imported inside the functions that draw tables, so batch mode,
which loads these commands at start-up, does not pay for rich unless a table is shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from recipe_repl.errors import UserError
from recipe_repl.generation import Request, Resume, Sample, StopReason, TokenEvent, contains_stop
from recipe_repl.hookspecs import hookimpl
from recipe_repl.sampling import StepContext, build_chain, distribution, draw, row_rng
from recipe_repl.session import Session
from recipe_repl.settings import PROBS_MODES, Settings
from recipe_repl.vocab import PAD_ID, UNK_ID, UNK_TOKEN, detokenize

if TYPE_CHECKING:
    from rich.text import Text

MAX_COLUMNS = 6  # temperatures side by side in :compare


# --- shared helpers ----------------------------------------------------------------------------------


def _count(text: str, what: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise UserError(f"{what} must be a whole number, not {text!r}") from None
    if not 1 <= n <= 100:
        raise UserError(f"{what} must be between 1 and 100")
    return n


def last_prompt(session: Session) -> str | None:
    """The last prompt typed (batch mode sets no `last_prompt`: there the last samples' prompt)."""
    if session.last_prompt:
        return session.last_prompt
    return session.last_samples[-1].prompt if session.last_samples else None


def _last_prompt_ids(session: Session, command: str) -> tuple[str, list[int]]:
    prompt = last_prompt(session)
    if not prompt:
        raise UserError(f"no prompt yet: type a prompt (e.g. recipe for roast), then :{command}")
    ids = session.engine.vocab.encode(prompt)
    if not ids:
        raise UserError("the last prompt has no words the model can read")
    return prompt, ids


def _feed(session: Session, ids: list[int], state: Any = None) -> tuple[np.ndarray, Any]:
    """Next-word logits [vocab] and the state after feeding `ids` (from a fresh state if None)."""
    engine = session.engine
    if state is None:
        state = engine.start(1)
    out, state = engine.forward(np.array([ids], dtype=np.int64), state)
    return out[0, -1, :], state


def next_word_probs(session: Session, settings: Settings, history: list[int], logits: np.ndarray) -> np.ndarray:
    """The sampler's distribution [vocab] for these logits under `settings` and the plugins' processors."""
    vocab = session.engine.vocab
    chain = build_chain(session.plugins.processor_specs(), settings, vocab)
    probs: np.ndarray = distribution(logits[None, :], chain, StepContext(settings, vocab, [history]))[0]
    return probs


def _after(text: str, limit: int = 48) -> Text:
    from rich.text import Text

    from recipe_repl import render

    tail = text if len(text) <= limit else "…" + text[-limit:]
    return Text("next word after “", style="bold").append(render.styled(tail)).append("”")


def _shaping(settings: Settings) -> str:
    """The settings that change the table, in words (for captions)."""
    parts = [f"temperature {settings.temperature:g}" + (" (greedy)" if settings.temperature == 0 else "")]
    if settings.top_k:
        parts.append(f"top-k {settings.top_k}")
    if settings.top_p < 1:
        parts.append(f"top-p {settings.top_p:g}")
    if settings.min_p > 0:
        parts.append(f"min-p {settings.min_p:g}")
    if settings.repetition_penalty != 1:
        parts.append(f"repetition penalty {settings.repetition_penalty:g}")
    if not settings.allow_unk:
        parts.append("[UNK] banned")
    parts += [f"{name} {' '.join(args)}".strip() for name, args in settings.use]
    return " · ".join(parts)


# --- :probs ------------------------------------------------------------------------------------------


def _probs(session: Session, args: str) -> None:
    from recipe_repl import render

    parts = args.split()
    usage = ":probs [N] | :probs every|first|off [N]"
    if len(parts) > 2:
        raise UserError(f"usage: {usage}")
    if parts and parts[0].lower() in PROBS_MODES:
        changes: dict[str, Any] = {"probs": parts[0].lower()}
        if len(parts) == 2:
            changes["probs_n"] = _count(parts[1], "the number of rows")
        session.update(**changes)
        s = session.settings
        what = {"off": "no probability tables during generation",
                "first": f"a table of the {s.probs_n} most likely words for the first generated word",
                "every": f"a table of the {s.probs_n} most likely words at every step"}[s.probs]
        session.say(f"probs = {s.probs}: {what}")
        return
    if len(parts) == 2:
        raise UserError(f"usage: {usage}")
    n = _count(parts[0], "the number of rows") if parts else session.settings.probs_n
    prompt, ids = _last_prompt_ids(session, "probs")
    logits, _ = _feed(session, ids)
    settings = session.settings
    probs = next_word_probs(session, settings, ids, logits)
    words = detokenize(session.engine.vocab.decode_tokens(ids), capitalize=False)
    session.frontend.show(render.prob_table(session.engine.vocab, probs, n, title=_after(words),
                                            caption=_shaping(settings)))


def _probs_complete(session: Session, text: str) -> Iterable[str]:
    return [*PROBS_MODES, "5", "10", "20"]


# --- :compare ----------------------------------------------------------------------------------------


def _compare(session: Session, args: str) -> None:
    from recipe_repl import render

    parts = args.replace(",", " ").split() or ["1.0", "0.2"]
    if len(parts) > MAX_COLUMNS:
        raise UserError(f":compare shows at most {MAX_COLUMNS} temperatures side by side")
    temperatures = []
    for p in parts:
        try:
            t = float(p)
        except ValueError:
            raise UserError(f"temperatures must be numbers, not {p!r} (e.g. :compare 1.0 0.2)") from None
        if not 0 <= t <= 5:  # also rejects NaN
            raise UserError("temperatures must be between 0 and 5")
        temperatures.append(t)
    prompt, ids = _last_prompt_ids(session, "compare")
    logits, _ = _feed(session, ids)
    columns = [(t, next_word_probs(session, session.settings.replace(temperature=t), ids, logits))
               for t in temperatures]
    words = detokenize(session.engine.vocab.decode_tokens(ids), capitalize=False)
    others = _shaping(session.settings).partition(" · ")[2]
    session.frontend.show(render.compare_table(session.engine.vocab, columns, session.settings.probs_n,
                                               title=_after(words), caption=f"also applied: {others}" if others
                                               else None))


def _compare_complete(session: Session, text: str) -> Iterable[str]:
    return ["1.0", "0.2", "0.5", "1.5", "0"]


# --- :pick -------------------------------------------------------------------------------------------

PICK_HELP = "a number picks that word · Enter lets the sampler pick · a word (=word for a number) · s stops"


def _pick(session: Session, args: str) -> None:
    from recipe_repl import render

    parts = args.split()
    if len(parts) > 1:
        raise UserError("usage: :pick [N]")
    n = _count(parts[0], "the number of choices") if parts else session.settings.probs_n
    vocab = session.engine.vocab
    prompt = last_prompt(session)
    if not prompt:
        prompt = session.frontend.ask("prompt to start from: ").strip()
        if not prompt:
            raise UserError("no prompt: :pick needs words to start from")
    ids = vocab.encode(prompt)
    if not ids:
        raise UserError("the prompt has no words the model can read")
    settings = session.settings
    key = session.next_key()
    rng = row_rng(settings.seed, key)
    prompt_words = vocab.decode_tokens(ids)
    history = list(ids)
    tokens: list[int] = []
    chosen_probs: list[float] = []
    request = Request(prompt, key=key)
    listener = session.plugins.listener()  # plugins' on_* hooks see a picked sample like any other
    if listener.active:
        listener.on_prompt(request, ids, settings)
    logits, state = _feed(session, ids)
    reason = StopReason.MAX_TOKENS
    session.say(f"choose the next word: {PICK_HELP}")
    while len(tokens) < settings.max_tokens:
        probs = next_word_probs(session, settings, history, logits)
        text = detokenize(prompt_words + vocab.decode_tokens(tokens), capitalize=False)
        session.frontend.show(render.prob_table(vocab, probs, n, title=_after(text), numbered=True))
        picked = _ask_choice(session, probs, n, rng)
        if picked is None:
            reason = StopReason.INTERRUPTED  # stopped by the person: :continue can go on from here
            break
        if picked == [PAD_ID]:
            if listener.active:
                listener.on_token(TokenEvent(request, len(tokens), PAD_ID, "", float(probs[PAD_ID]), probs))
            reason = StopReason.STOP_TOKEN
            session.say(f"the stop token ({render.percent(float(probs[PAD_ID]))}) ends the recipe")
            break
        picked = picked[: settings.max_tokens - len(tokens)]
        for j, tok in enumerate(picked):  # a typed "1/2" is three words: feed them one by one
            if j > 0:
                probs = next_word_probs(session, settings, history, logits)
            if listener.active:
                listener.on_token(TokenEvent(request, len(tokens), tok, vocab.word(tok), float(probs[tok]), probs))
            tokens.append(tok)
            chosen_probs.append(float(probs[tok]))
            history.append(tok)
            logits, state = _feed(session, [tok], state)
        if settings.stop and contains_stop(vocab.decode_tokens(tokens), settings.stop):
            reason = StopReason.STOP_STRING
            session.say(f"the stop string “{render.safe(settings.stop)}” ends the recipe")
            break
    words = vocab.decode_tokens(tokens)
    resume = None
    if reason != StopReason.STOP_TOKEN:
        resume = Resume(state, logits.copy(), (), list(history), rng, prompt_words + words)
    sample = Sample(prompt=prompt, prompt_words=prompt_words, token_ids=tokens, words=words, probs=chosen_probs,
                    stop_reason=reason, settings=settings, index=0, key=key, resume=resume)
    if listener.active:
        listener.on_sample_end(sample)
    session.remember(prompt, [sample])  # sets last_prompt too
    session.frontend.show_samples(session, [sample])


def _ask_choice(session: Session, probs: np.ndarray, n: int, rng: np.random.Generator) -> list[int] | None:
    """Ask until the answer is usable; return the token ids to feed, or None to stop.

    Enter draws with the sample's own seeded generator, exactly as the sampler would.
    """
    from recipe_repl import render

    vocab = session.engine.vocab
    shown = render.top_ids(probs, n)
    while True:
        try:
            answer = session.frontend.ask(f"pick 1-{len(shown)}, Enter, a word or s: ").strip()
        except (KeyboardInterrupt, EOFError):
            return None
        if answer.lower() == "s":
            return None
        if answer == "":
            return [int(draw(probs[None, :], [rng])[0])]
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
    register("probs", _probs, usage=":probs [N|every|first|off]",
             help="the N most likely next words; every/first/off: tables while generating",
             details="`:probs N` shows the N most likely words after the last prompt, at the current temperature, "
                     "top-k/top-p and plugin processors: exactly what the sampler draws from. `:probs every [N]` "
                     "shows such a table at every step of a generation, `:probs first [N]` for the first word "
                     "only, `:probs off` none. The stop token appears as ⏹ [end].",
             complete=_probs_complete)
    register("compare", _compare, usage=":compare T1 T2 …",
             help="next-word tables at several temperatures side by side (default 1.0 0.2)",
             complete=_compare_complete)
    register("pick", _pick, usage=":pick [N]", interactive_only=True,
             help="choose each next word yourself from the N most likely",
             details=PICK_HELP, complete=_pick_complete)
