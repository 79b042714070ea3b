"""One numbering of words for every view of a text: `:words`, `:why`, `:branch`, `:back`, `:score`, `:cells`.

Word N (1-based) is the N-th token of the *whole* text as the model reads it: the prompt's tokens
first, then the generated (or forced, or continued) ones, punctuation included ("," and "." are
tokens too); when a sample ended on the stop token, ⏹ is its last word and is counted. Word 1 has
no prediction (nothing precedes it). A negative number counts from the end (-1 is the last word).

`NumberedText` is such a text with what is known of each word: where it came from (typed in the
prompt, drawn by the sampler, picked by a person, chosen by beam search, written by `:branch`, read
by `:score`), the probability it was drawn with and the settings it was drawn under; and, computed
once on demand, the model's own probability of every word given the words before it. The session
keeps the last one (`Session.last_text`: the last sample, or the text `:score` read), and every
command that takes a word number parses it with `word_index` against that text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from recipe_repl.base.errors import BadValue, UserError
from recipe_repl.base.settings import Settings
from recipe_repl.generate.beam import chain_settings
from recipe_repl.generate.loop import Sample, StopReason
from recipe_repl.generate.scoring import next_word_probs
from recipe_repl.model.engine import Engine
from recipe_repl.model.vocab import PAD_ID, STOP_WORD, Vocabulary, detokenize

__all__ = ["STOP_WORD", "NumberedText", "Origin", "Word", "word_index"]


class Origin(StrEnum):
    """Where a word of a text came from."""

    PROMPT = "prompt"  # typed by the person (a sample's prompt)
    DRAWN = "drawn"  # drawn by the sampler
    PICKED = "picked"  # chosen by a person in `:pick` (or by the sampler on Enter)
    CHOSEN = "chosen"  # chosen by beam search
    FORCED = "forced"  # written by `:branch`
    READ = "read"  # a word of a text `:score` read


ORIGIN_OF_METHOD = {"sample": Origin.DRAWN, "pick": Origin.PICKED, "beam": Origin.CHOSEN}


@dataclass(frozen=True)
class Word:
    """One word of a numbered text."""

    id: int
    token: str  # the model's token (STOP_WORD for the stop token)
    origin: Origin
    prob: float | None = None  # the probability it was drawn or chosen with (sampling distribution); None if typed
    settings: Settings | None = None  # the settings it was chosen under (beam search: temperature 1)

    @property
    def is_stop(self) -> bool:
        """Whether this is the stop token that ended the text."""
        return self.id == PAD_ID

    @property
    def chosen_by_model(self) -> bool:
        """Whether the sampler, a person or beam search chose it (it has a table it was chosen from)."""
        return self.origin in (Origin.DRAWN, Origin.PICKED, Origin.CHOSEN)


@dataclass
class NumberedText:
    """A whole text, word by word, numbered from 1 (see the module's docstring)."""

    prompt: str  # the prompt line it began with (what `:continue` and `:branch` report on)
    words: list[Word]
    source: str = "the last sample"  # what it is, for messages: "the last sample", "the scored text"
    generated_from: int = 0  # index of the first word of the latest sample's own generated words
    sample: Sample | None = field(default=None, repr=False)  # the sample it is the text of (None: read by :score)
    _model: list[float | None] | None = field(default=None, repr=False)

    @classmethod
    def from_sample(cls, sample: Sample, vocab: Vocabulary, before: NumberedText | None = None) -> NumberedText:
        """The whole text of a sample; `before` (the text a continued or branched sample reads on from)
        keeps what is known of its words when it is exactly the sample's context."""
        context = [vocab.id_of(w) for w in sample.prompt_words]
        if before is not None and before.ids() == context and not before.ends_on_stop:
            head = list(before.words)
        else:
            head = [Word(i, w, Origin.PROMPT) for i, w in zip(context, sample.prompt_words, strict=True)]
        origin = ORIGIN_OF_METHOD.get(sample.method, Origin.DRAWN)
        settings = chain_settings(sample)
        tail = [Word(i, w, origin, p, settings)
                for i, w, p in zip(sample.token_ids, sample.words, sample.probs, strict=True)]
        if sample.stop_reason == StopReason.STOP_TOKEN and sample.stop_prob is not None:
            tail.append(Word(PAD_ID, STOP_WORD, origin, sample.stop_prob, settings))
        return cls(sample.prompt, head + tail, generated_from=len(head), sample=sample)

    @classmethod
    def read(cls, text: str, ids: Sequence[int], vocab: Vocabulary,
             model: Sequence[float | None] | None = None) -> NumberedText:
        """A text the model reads (`:score`): its words, then ⏹ (the stop token is scored too); `model`,
        when known, the model's probability of each of them (None for word 1)."""
        words = [Word(i, vocab.words[i], Origin.READ) for i in ids]
        words.append(Word(PAD_ID, STOP_WORD, Origin.READ))
        known = list(model) if model is not None and len(model) == len(words) else None
        return cls(text, words, source="the scored text", generated_from=len(words), _model=known)

    def __len__(self) -> int:
        return len(self.words)

    @property
    def ends_on_stop(self) -> bool:
        """Whether the last word is the stop token."""
        return bool(self.words) and self.words[-1].is_stop

    def ids(self, end: int | None = None) -> list[int]:
        """The token ids of words 1 … `end` (all by default), the stop token left out: what the model is fed."""
        return [w.id for w in self.words[:end] if not w.is_stop]

    def tokens(self) -> list[str]:
        """Every word's token, ⏹ included."""
        return [w.token for w in self.words]

    def before(self, k: int) -> str:
        """The readable text before the word at index `k` (0-based)."""
        return detokenize([w.token for w in self.words[:k] if not w.is_stop], capitalize=False)

    def first(self, n: int) -> NumberedText:
        """The text cut to its first `n` words (what is known of them is kept)."""
        model = self._model[:n] if self._model is not None else None
        return NumberedText(self.prompt, self.words[:n], self.source, min(self.generated_from, n), self.sample,
                            model)

    def plus(self, words: Sequence[Word]) -> NumberedText:
        """The text with `words` added at the end."""
        return NumberedText(self.prompt, [*self.words, *words], self.source, self.generated_from, self.sample)

    def model_probs(self, engine: Engine) -> list[float | None]:
        """The model's own probability of each word given the words before it (temperature 1, no
        processors); None for word 1. Computed once, with one pass over the text."""
        if self._model is None or len(self._model) != len(self.words):
            ids = self.ids()
            if not ids:
                self._model = [None] * len(self.words)
            else:
                found = next_word_probs(engine, ids)  # ids[1:] then the stop token after the last
                probs: list[float | None] = [None, *found[:-1]]
                if self.ends_on_stop:
                    probs.append(found[-1])
                self._model = probs
        return list(self._model)

    def index(self, text: str, command: str, rest: str = "", predicted: bool = False) -> int:
        """The 0-based index of word number `text` of this text (see `word_index`)."""
        return word_index(text, len(self.words), command, rest, predicted, self.source)


def word_index(text: str, count: int, command: str, rest: str = "", predicted: bool = False,
               source: str = "the last text") -> int:
    """A word number of a text of `count` words (1-based; negative counts from the end) → 0-based index.

    `predicted`: the word must have a prediction (word 1 has none: nothing precedes it). `rest` is
    what the command line has after the number, for the example in the error. A bad number raises
    BadValue (a UserError) that says which numbers are valid.
    """
    low = 2 if predicted else 1
    if count < low:
        raise UserError(f"{source} has {_words(count)}: nothing to choose" if not predicted else
                        f"{source} has {_words(count)}: word 1 has no prediction (nothing precedes it)")
    last_negative = count - low + 1
    valid = f"{low} to {count}, or -1 to -{last_negative} from the end" if count > low else f"{count} (or -1)"
    try:
        n = int(text)
    except ValueError:
        raise BadValue(f"{command} takes a word number ({valid}), not {text!r}") from None
    if predicted and n in (1, -count):
        raise BadValue(f"word 1 has no prediction: nothing precedes it (choose {valid})",
                       example=f"{command} {count}{rest}")
    if not (1 <= n <= count or -count <= n <= -1):
        raise BadValue(f"{source} has {_words(count)}: choose {valid}", example=f"{command} {count}{rest}")
    return n - 1 if n > 0 else count + n


def _words(n: int) -> str:
    return f"{n} word{'s' if n != 1 else ''}"
