"""Built-in "why this word?" commands: :heat, :why, :back, :branch, :score, :beam, :lenpen, :best.

A language model is a chain of choices, each with a probability. These commands show the chain of
the last sample (:heat colours each word by its probability, :why shows the table a word was drawn
from), go back along it (:back, :branch), score a text the user gives (:score), and search for the
likeliest chains instead of sampling one (:beam, :best).

An LSTM's whole state is two vectors per row, so going back costs one re-feed of the words kept:
the state after them is recomputed exactly (the model gives the same state fed at once or word by
word), rather than kept for every word of every sample.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from recipe_repl.base.errors import BadValue, UsageError, UserError
from recipe_repl.generate.inspection import cut_text, forced_words, tables_before
from recipe_repl.generate.loop import Sample
from recipe_repl.generate.numbering import NumberedText, Origin
from recipe_repl.generate.sampling import row_rng
from recipe_repl.model.vocab import detokenize
from recipe_repl.plugin.commands import count_arg, no_args, one_arg, split_args
from recipe_repl.plugin.hookspecs import hookimpl
from recipe_repl.session.session import Session

HEAT_MODES = ("on", "sampling", "off", "model")
NUMBERING = ("Word N is the N-th token of the whole text (the prompt's first, punctuation included, ⏹ last "
             "when the stop token ended it), as :words shows; -1 is the last word; word 1 has no prediction.")


# --- the last text as a chain of choices ---------------------------------------------------------------
#
# Word numbers are those of `recipe_repl.generate.numbering`: word N is the N-th token of the whole
# text (prompt first, ⏹ last when the stop token ended it), the same in :words, :why, :branch, :back,
# :score and :cells.

VERB = {Origin.DRAWN: "drawn", Origin.PICKED: "picked", Origin.CHOSEN: "chosen", Origin.PROMPT: "typed",
        Origin.FORCED: "written", Origin.READ: "read"}


def _least_likely(text: NumberedText, model: list[float | None]) -> int:
    """The index of the word the model found least likely: among the latest sample's own words when it
    has any, else among every word with a prediction."""
    own = range(max(1, text.generated_from), len(text))
    candidates = own if len(own) else range(1, len(text))
    return min(candidates, key=lambda k: (model[k] if model[k] is not None else 1.0, k))


def _why(session: Session, args: str) -> None:
    from recipe_repl.views import render

    parts = args.split()
    if len(parts) > 1:
        raise UsageError("too many arguments")
    text = session.text_for("why")
    engine = session.engine
    model = text.model_probs(engine)
    if parts:
        k = text.index(parts[0], ":why", predicted=True)
    else:
        if len(text) < 2:
            raise UserError(f"{text.source} has one word: word 1 has no prediction (nothing precedes it)")
        k = _least_likely(text, model)
    word = text.words[k]
    settings = word.settings or session.settings
    tables = tables_before(engine, session.plugins.processor_specs(), text, k, settings)
    p_model = model[k]
    verb = VERB[word.origin]
    how = f"{verb} at {render.percent(word.prob)}" if word.prob is not None and word.chosen_by_model else verb
    if tables.reshaped or not word.chosen_by_model:
        how += f"; the model gave it {render.percent(p_model)}" if p_model is not None else ""
    title = render.after_title(text.before(k))
    title.append_text(render.styled(f"   (word {k + 1} of {len(text)}: {how})"))
    session.frontend.show(render.prob_table(
        engine.vocab, tables.sampling, session.settings.probs_n, title=title, chosen=word.id,
        caption=render.columns_caption(tables.settings, tables.reshaped),
        model=tables.model if tables.reshaped else None, mark=verb))


def _words(session: Session, args: str) -> None:
    from recipe_repl.views import words_view

    no_args(args)
    text = session.text_for("words")
    model = text.model_probs(session.engine)
    session.frontend.show(words_view.numbered_words(
        text.tokens(), model, typed=[w.origin == Origin.PROMPT for w in text.words],
        forced=[w.origin == Origin.FORCED for w in text.words],
        title=f"{text.source}, word by word: each word's number and the model's probability of it "
              "(temperature 1, no processors) given the words before"))


def _back(session: Session, args: str) -> None:
    from recipe_repl.views import render

    parts = args.split()
    if len(parts) > 1:
        raise UsageError("too many arguments")
    text = session.text_for("back")
    if len(text) < 2:
        raise UserError(f"{text.source} has one word: nothing to go back over")
    n = 1 if not parts else _back_count(parts[0], len(text) - 1)
    keep = len(text) - n
    rewound = _cut(session, text, keep, [])
    session.remember(text.prompt, [rewound], text=text.first(keep))
    shown = detokenize(text.tokens()[:keep])
    session.say(f"back {n} word{'s' if n != 1 else ''}: …{render.safe(shown[-80:])}  (now {keep} words; "
                ":continue goes on from here)")


def _cut(session: Session, text: NumberedText, keep: int, forced: list[int]) -> Sample:
    """`text` cut to `keep` words (then `forced` fed), carrying on with the sample it came from: its
    settings and its random generator (so with a seed the same commands give the same text)."""
    sample = text.sample
    if sample is not None:
        rng = sample.rng if sample.rng is not None else row_rng(sample.settings.seed, sample.key)
        return cut_text(session.engine, text, keep, forced, sample.settings, rng, sample.key, sample.index,
                        sample.method)
    key = session.next_key()
    return cut_text(session.engine, text, keep, forced, session.settings, row_rng(session.settings.seed, key), key)


def _back_count(text: str, most: int) -> int:
    try:
        n = int(text)
    except ValueError:
        raise BadValue(f":back takes a number of words, 1 to {most}, not {text!r}") from None
    if not 1 <= n <= most:
        raise BadValue(f"the last text has {most + 1} words: go back 1 to {most}", example=f":back {most}")
    return n


def _branch(session: Session, args: str) -> None:
    from recipe_repl.views import render, words_view

    engine = session.engine
    vocab = engine.vocab
    limit = session.max_prompt_tokens
    # counted on the raw arguments (N and the words), before anything is split, encoded or fed
    if vocab.count_tokens(args, limit + 2) > limit + 1:
        raise BadValue(f"the words to write are over the limit of {limit:,} tokens (--max-prompt-tokens)",
                       example=":branch 2 whisk")
    parts = split_args(args)
    if len(parts) < 2:
        raise UsageError()
    text = session.text_for("branch")
    written = " ".join(parts[1:])
    k = text.index(parts[0], ":branch", " " + (written if len(written) < 40 else "WORD"), predicted=True)
    forced = vocab.encode(written)
    if not forced:
        raise BadValue("the word to write has no characters the model reads")
    session.warn_unknown(written)
    replaced = text.words[k]
    before = text.first(k).plus(forced_words(vocab, forced))
    model = before.model_probs(engine)
    was = text.model_probs(engine)[k]
    each = ", ".join(f"word {k + 1 + j} “{vocab.words[i]}” {render.percent(model[k + j] or 0.0)}"
                     for j, i in enumerate(forced))
    session.say(render.safe(f"branch at word {k + 1}: {each} (the model's probabilities) instead of "
                            f"“{replaced.token}” ({render.percent(was or 0.0)})"))
    branched = _cut(session, text, k, forced)
    assert branched.resume is not None
    session.run_requests([text.prompt], [branched.resume], before=before)
    new = session.last_text
    if new is not None:
        session.frontend.show(words_view.branch_text(new.tokens(), k, len(forced), raw=session.settings.raw))


# --- scoring a text ------------------------------------------------------------------------------------


def _score(session: Session, args: str) -> None:
    from rich.text import Text

    from recipe_repl.generate.scoring import score_text
    from recipe_repl.views import render

    text = args.strip()
    if not text:
        raise UsageError()
    scored = score_text(session.engine, text, session.max_prompt_tokens)
    session.warn_unknown(text)
    session.read_text(NumberedText.read(text, scored.ids, session.engine.vocab,
                                        model=[*scored.probs, scored.stop_prob]))
    line = Text()
    line.append_text(render.heat_text(scored.words, scored.probs, raw=session.settings.raw))
    line.append(" " + render.END_MARKER, style=render.heat_style(scored.stop_prob))
    session.frontend.show(line)
    worst = scored.least_likely(5)
    if worst:
        session.frontend.show(render.least_likely_table(worst))
    unknown = f" · {scored.unknown} unknown word{'s' if scored.unknown != 1 else ''} ([UNK])" if scored.unknown else ""
    session.say(f"perplexity {scored.perplexity:,.2f} over {len(scored.predictions)} predictions "
                f"(the words after the first, and the stop token){unknown}")
    without = scored.perplexity_without_stop
    if scored.stop_is_least_likely and without is not None:
        session.say(f"the stop token ({render.percent(scored.stop_prob)}) weighs in the perplexity: "
                    f"{scored.perplexity:,.2f} with it, {without:,.2f} without")


def model_mean_logprob(sample: Sample) -> float:
    """The model's mean log-probability of a sample's choices (the stop token included when it ended it)."""
    n = len(sample.token_probs)
    total = sample.model_logprob_sum
    return total / n if n and total is not None else -math.inf


# --- search instead of sampling ------------------------------------------------------------------------


def _beam(session: Session, args: str) -> None:
    word = one_arg(args).lower()
    if word in ("off", "0"):
        session.update(beam=0)
        session.say("beam search off: prompts are sampled again")
        return
    try:
        k = int(word)
    except ValueError:
        raise BadValue(f"beam width must be a whole number, not {word!r}") from None
    session.update(beam=k)
    session.say(f"beam search of width {k}: each prompt gives its {k} likeliest continuations, ranked by "
                f"log-probability / length^{session.settings.length_penalty:g} (:lenpen)")


def _lenpen(session: Session, args: str) -> None:
    word = one_arg(args)
    try:
        value = float(word)
    except ValueError:
        raise BadValue(f"length penalty must be a number, not {word!r}") from None
    if value != value:
        raise BadValue("length penalty must be a number, not nan")
    session.update(length_penalty=value)
    session.say(f"length penalty = {session.settings.length_penalty:g}")


def _best(session: Session, args: str) -> None:
    from recipe_repl.views import render

    parts = args.split()
    if len(parts) > 1:
        raise UsageError("too many arguments")
    n = count_arg(parts[0], "the number of samples") if parts else 5
    if session.settings.beam:
        raise UserError(":best ranks samples: turn beam search off first (:beam off)")
    prompt = session.prompt_to_read()
    if not prompt:
        raise UserError("no prompt yet: type a prompt, then :best N")
    samples = session.run_requests([prompt] * n, model_probs=True)
    ranked = sorted(range(len(samples)), key=lambda i: -model_mean_logprob(samples[i]))
    session.frontend.show(render.ranking_table([(i + 1, samples[i]) for i in ranked]))


def _heat(session: Session, args: str) -> None:
    from recipe_repl.views import render

    word = one_arg(args).lower()
    if word not in HEAT_MODES:
        raise UsageError(f"on, sampling or off, not {word!r}")
    frontend: Any = session.frontend
    frontend.heat = {"on": "model", "model": "model", "sampling": "sampling", "off": ""}[word]
    if frontend.heat:
        session.frontend.show(render.heat_legend(frontend.heat))
    else:
        session.say("heat off")


def _heat_complete(session: Session, text: str) -> Iterable[str]:
    return HEAT_MODES


@hookimpl
def register_commands(register: Any) -> None:
    """The "why this word?" commands."""
    register("heat", _heat, usage=":heat on|sampling|off", example=":heat on", interactive_only=True,
             complete=_heat_complete,
             help="colour each generated word by the model's probability of it (sampling: as drawn)",
             details="Five bands from under 1% to 70% and more; the legend says which probability colours "
                     "the words: `:heat on` the model's own (temperature 1, no processors), `:heat sampling` "
                     "the one each word was drawn with, after the settings. With :raw on each word is followed "
                     "by its probability, e.g. salt(0.42). :save FILE.md keeps the bands as marks.")
    register("words", _words, example=":words",
             help="the last text with each word's number and the model's probability of it",
             details=NUMBERING + " After :score, the scored text is the last text.")
    register("why", _why, usage=":why [N]", example=":why 12",
             help="the table word N was chosen from (no N: the word the model found least likely)",
             details="The distribution exactly as it was when the word was chosen (same settings and "
                     "processors), the chosen word marked. " + NUMBERING)
    register("back", _back, usage=":back [N]", example=":back 2",
             help="rewind the last text by N words (default 1); :continue then goes on from there",
             details="The stop token counts as a word: :back 1 after it lets :continue go on. With a seed, "
                     "the same commands give the same text.")
    register("branch", _branch, usage=":branch N WORDS…", example=":branch 12 butter",
             help="rewind to before word N, write WORDS there, and let the model go on",
             details="Says how likely the model found each written word, then shows the whole new text with "
                     "the branch point marked (▶). " + NUMBERING)
    register("score", _score, usage=":score TEXT", example=":score mix the flour and sugar .",
             help="how likely the model finds each word of TEXT, its least likely words, and its perplexity",
             details="The model's own distribution (temperature 1, no processors), as `recipe-repl eval` counts: "
                     "every word after the first, then the stop token at the end.")
    register("beam", _beam, usage=":beam K|off", example=":beam 3", complete=lambda s, t: ["off", "1", "3", "5"],
             help="beam search of width K instead of sampling (K = 1 is greedy)")
    register("lenpen", _lenpen, usage=":lenpen X", example=":lenpen 1.0", complete=lambda s, t: ["0", "0.5", "1.0"],
             help="beams rank by log-probability / length^X (1 = mean log-probability)")
    register("best", _best, usage=":best [N]", example=":best 5",
             help="N samples of the last prompt, ranked by the model's mean log-probability",
             details="Drawn with the current settings (samples 1 to N of the prompt: with a seed, the first is "
                     "the one the prompt gives), ranked by the model's own mean log-probability (temperature 1, "
                     "no processors); the mean log-probability of the distribution each word was drawn from "
                     "is the column beside it.")
