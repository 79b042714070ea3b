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

from collections.abc import Iterable
from typing import Any

import numpy as np

from recipe_repl.base.errors import BadValue, UsageError, UserError
from recipe_repl.generate.inspection import chain_settings, distribution_at, rewind
from recipe_repl.generate.loop import Sample
from recipe_repl.model.vocab import PAD_ID, UNK_ID, detokenize
from recipe_repl.plugin.commands import count_arg, one_arg, split_args
from recipe_repl.plugin.hookspecs import hookimpl
from recipe_repl.session.session import Session

ON_OFF = ("on", "off")


# --- the last sample as a chain of choices -------------------------------------------------------------


def _word_number(text: str, count: int, command: str, rest: str = "") -> int:
    """A 1-based word number from `text` (negative counts from the end) → 0-based index.

    `rest` is what the command line has after the number, for the example in the error.
    """
    valid = f"1 to {count}, or -1 to -{count} from the end" if count > 1 else "1 (or -1)"
    try:
        n = int(text)
    except ValueError:
        raise BadValue(f"{command} takes a word number ({valid}), not {text!r}") from None
    if not (1 <= n <= count or -count <= n <= -1):
        raise BadValue(f"the last sample has {count} choice{'s' if count != 1 else ''}: choose {valid}",
                       example=f"{command} {count}{rest}")
    return n - 1 if n > 0 else count + n


def _choice_word(sample: Sample, k: int) -> int:
    return sample.token_ids[k] if k < len(sample.token_ids) else PAD_ID


def _why(session: Session, args: str) -> None:
    from recipe_repl.views import render

    parts = args.split()
    if len(parts) > 1:
        raise UsageError("too many arguments")
    sample = session.sample_for("why")
    probs = sample.token_probs
    if not probs:
        raise UserError("the last sample made no choices (it was stopped at once)")
    if parts:
        k = _word_number(parts[0], len(probs), ":why")
    else:
        k = int(np.argmin(probs))  # the least likely choice
    dist = distribution_at(session.engine, session.plugins.processor_specs(), sample, k)
    chosen = _choice_word(sample, k)
    vocab = session.engine.vocab
    before = detokenize(sample.prompt_words + vocab.decode_tokens(sample.token_ids[:k]), capitalize=False)
    title = render.after_title(before)
    title.append_text(render.styled(f"   (word {k + 1} of {len(probs)}: drawn at {render.percent(probs[k])})"))
    session.frontend.show(render.prob_table(vocab, dist, session.settings.probs_n, title=title, chosen=chosen,
                                            caption=render.shaping(chain_settings(sample))))


def _back(session: Session, args: str) -> None:
    from recipe_repl.views import render

    parts = args.split()
    if len(parts) > 1:
        raise UsageError("too many arguments")
    sample = session.sample_for("back")
    words = len(sample.token_ids)
    if words == 0:
        raise UserError("the last sample has no words to go back over")
    n = 1 if not parts else _back_count(parts[0], words)
    rewound = rewind(session.engine, sample, words - n)
    session.remember(sample.prompt, [rewound])
    text = detokenize(rewound.resume.words_before if rewound.resume else rewound.prompt_words)
    session.say(f"back {n} word{'s' if n != 1 else ''}: …{render.safe(text[-80:])}  (:continue goes on from here)")


def _back_count(text: str, words: int) -> int:
    try:
        n = int(text)
    except ValueError:
        raise BadValue(f":back takes a number of words, 1 to {words}, not {text!r}") from None
    if not 1 <= n <= words:
        raise BadValue(f"the last sample has {words} word{'s' if words != 1 else ''}: go back 1 to {words}",
                       example=f":back {words}")
    return n


def _branch(session: Session, args: str) -> None:
    from recipe_repl.views import render

    parts = split_args(args)
    if len(parts) < 2:
        raise UsageError()
    sample = session.sample_for("branch")
    count = len(sample.token_ids)
    if count == 0:
        raise UserError("the last sample has no words to branch from")
    k = _word_number(parts[0], count, ":branch", " " + " ".join(parts[1:]))
    vocab = session.engine.vocab
    forced = vocab.encode(" ".join(parts[1:]))
    if not forced:
        raise BadValue("the word to write has no characters the model reads")
    had = distribution_at(session.engine, session.plugins.processor_specs(), sample, k)[forced[0]]
    unknown = [w for w in vocab.prepare(" ".join(parts[1:])) if vocab.id_of(w) == UNK_ID]
    note = f" ({', '.join(map(repr, unknown))} reads as [UNK])" if unknown else ""
    session.say(render.safe(f"branch at word {k + 1}: “{' '.join(vocab.decode_tokens(forced))}” instead of "
                            f"“{vocab.words[sample.token_ids[k]]}” (the model gave it {render.percent(float(had))})"
                            f"{note}"))
    branched = rewind(session.engine, sample, k, forced)
    assert branched.resume is not None
    session.run_requests([sample.prompt], [branched.resume])


# --- scoring a text ------------------------------------------------------------------------------------


def _score(session: Session, args: str) -> None:
    from rich.text import Text

    from recipe_repl.generate.scoring import score_text
    from recipe_repl.views import render

    text = args.strip()
    if not text:
        raise UsageError()
    scored = score_text(session.engine, text, session.max_prompt_tokens)
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
    from recipe_repl.generate.beam import mean_logprob
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
    samples = session.run_requests([prompt] * n)
    ranked = sorted(range(len(samples)), key=lambda i: -mean_logprob(samples[i]))
    session.frontend.show(render.ranking_table([(i + 1, samples[i]) for i in ranked]))


def _on_off_complete(session: Session, text: str) -> Iterable[str]:
    return ON_OFF


def _heat(session: Session, args: str) -> None:
    from recipe_repl.views import render

    word = one_arg(args).lower()
    if word not in ON_OFF:
        raise UsageError(f"on or off, not {word!r}")
    frontend: Any = session.frontend
    frontend.heat = word == "on"
    if frontend.heat:
        session.frontend.show(render.heat_legend())
    else:
        session.say("heat off")


@hookimpl
def register_commands(register: Any) -> None:
    """The "why this word?" commands."""
    register("heat", _heat, usage=":heat on|off", example=":heat on", interactive_only=True, complete=_on_off_complete,
             help="colour each generated word by the probability it had when drawn",
             details="Five bands from under 1% to 70% and more; the legend is shown when heat is turned on. "
                     "With :raw on each word is followed by its probability, e.g. salt(0.42). :save FILE.md "
                     "keeps the bands as marks.")
    register("why", _why, usage=":why [N]", example=":why 3",
             help="the table the N-th word of the last sample was drawn from (no N: the least likely word)",
             details="The distribution exactly as it was when the word was chosen (same settings and "
                     "processors), the chosen word marked. N counts generated words from 1; -1 is the last. "
                     "The stop token counts as the last choice when it ended the sample.")
    register("back", _back, usage=":back [N]", example=":back 2",
             help="rewind the last sample by N words (default 1); :continue then goes on from there",
             details="With a seed, the same commands give the same text.")
    register("branch", _branch, usage=":branch N WORD", example=":branch 3 butter",
             help="rewind to before word N, write WORD there, and let the model go on",
             details="Shows how likely the model found WORD at that point. WORD may be several words.")
    register("score", _score, usage=":score TEXT", example=":score mix the flour and sugar .",
             help="how likely the model finds each word of TEXT, its least likely words, and its perplexity",
             details="The model's own distribution (temperature 1, no processors), as `recipe-repl eval` counts: "
                     "every word after the first, then the stop token at the end.")
    register("beam", _beam, usage=":beam K|off", example=":beam 3", complete=lambda s, t: ["off", "1", "3", "5"],
             help="beam search of width K instead of sampling (K = 1 is greedy)")
    register("lenpen", _lenpen, usage=":lenpen X", example=":lenpen 1.0", complete=lambda s, t: ["0", "0.5", "1.0"],
             help="beams rank by log-probability / length^X (1 = mean log-probability)")
    register("best", _best, usage=":best [N]", example=":best 5",
             help="N samples of the last prompt with the current settings, ranked by mean log-probability")
