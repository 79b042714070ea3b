"""The last text and its word numbers, as the views inside the LSTM read them.

INTERIM: issue 20 puts one word numbering, `:words` and "the last text" (the last sample, or the
text `:score` read) in one shared place; when it lands, `last_text` and `word_index` here give way
to it. The numbering is already the agreed one: word N (1-based) is the N-th token of the whole
text as the model reads it, prompt first, punctuation included, the stop token `⏹` last when the
sample ended on it; negative N counts from the end.
"""

from __future__ import annotations

from dataclasses import dataclass

from recipe_repl.base.errors import BadValue
from recipe_repl.generate.inspection import context_ids
from recipe_repl.generate.loop import StopReason
from recipe_repl.model.vocab import PAD_ID
from recipe_repl.session.session import Session

STOP_WORD = "⏹"


@dataclass(frozen=True)
class LastText:
    """The last text as the model reads it: ids, with the stop token last when the text ended on it."""

    ids: list[int]
    words: list[str]  # `STOP_WORD` for the stop token
    source: str  # "the last sample", in words
    prompt_words: int  # how many words of it the model was given (the rest it wrote)

    @property
    def ends_on_stop(self) -> bool:
        """Whether the last word is the stop token."""
        return bool(self.ids) and self.ids[-1] == PAD_ID

    @property
    def read_ids(self) -> list[int]:
        """The words the model read (the stop token is predicted, never read)."""
        return self.ids[:-1] if self.ends_on_stop else list(self.ids)


def last_text(session: Session, command: str) -> LastText:
    """The last sample (prompt and generated words, ⏹ when it ended on it), or a UserError saying what to do."""
    sample = session.sample_for(command)
    vocab = session.engine.vocab
    prompt = context_ids(vocab, sample)
    ids = prompt + list(sample.token_ids)
    words = [vocab.words[i] for i in ids]
    if sample.stop_reason == StopReason.STOP_TOKEN:
        ids.append(PAD_ID)
        words.append(STOP_WORD)
    return LastText(ids, words, "the last sample", len(prompt))


def word_index(text: str, count: int, command: str, first: int = 1) -> int:
    """Word number `text` (1-based; negative counts from the end) of a `count`-word text → 0-based index.

    `first` is the lowest number the command takes (2 where word 1, which nothing predicts, makes no sense).
    """
    low = first
    valid = f"{low} to {count}, or -1 to -{count - low + 1} from the end" if count > low else f"{count} (or -1)"
    try:
        n = int(text)
    except ValueError:
        raise BadValue(f"{command} takes a word number ({valid}), not {text!r}") from None
    index = n - 1 if n > 0 else count + n
    if not low - 1 <= index < count or n == 0:
        raise BadValue(f"the last text has {count} word{'s' if count != 1 else ''}: choose {valid}",
                       example=f"{command} {count}")
    return index
