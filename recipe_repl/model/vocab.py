"""Vocabulary, tokenizer and detokenizer that reproduce Keras `TextVectorization` ids exactly.

Training pads punctuation with `pad_punctuation` and then hands the text to
`TextVectorization(standardize='lower', split='whitespace')`. That layer lower-cases with
`tf.strings.lower`, which only touches ASCII letters, and splits on ASCII whitespace only.
`Vocabulary.encode` does the same three steps in pure Python so the runtime never needs TensorFlow.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

PAD_ID = 0  # padding, and the stop token: a sample ends when the model emits it
UNK_ID = 1
UNK_TOKEN = "[UNK]"
STOP_WORD = "⏹"  # the stop token as a word of a numbered text, a score or a view

# The lecture's own pattern, kept verbatim so that models trained in its notebook tokenize
# identically. Inside the class `[\]` is an escaped `]`, so a backslash is *not* padded.
_PUNCT_RE = re.compile(f"([{string.punctuation}])")
_SPACES_RE = re.compile(" +")
# tf.strings.split(sep=None) splits on ASCII whitespace only (absl::ascii_isspace).
_TF_WHITESPACE_RE = re.compile("[ \t\n\v\f\r]+")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
# One token of `split_words(pad_punctuation(text))`: a punctuation mark alone, or a run of anything that
# is neither punctuation nor ASCII whitespace (the class is `_PUNCT_RE`'s, so a backslash is a letter).
_TOKEN_RE = re.compile(f"[{string.punctuation}]|[^{string.punctuation} \t\n\v\f\r]+")


def pad_punctuation(text: str) -> str:
    """Put spaces around every punctuation character and collapse runs of spaces (the lecture's prep)."""
    return _SPACES_RE.sub(" ", _PUNCT_RE.sub(r" \1 ", text))


def standardize(text: str, lowercase: str = "ascii") -> str:
    """Lower-case as TextVectorization(standardize='lower') does: ASCII only, unless `lowercase='unicode'`."""
    if lowercase == "unicode":
        return text.lower()
    return text.translate(_ASCII_LOWER)


def count_tokens(text: str, stop_at: int) -> int:
    """How many tokens `text` makes, counting no further than `stop_at`: bounded work and no copy of
    the text, so a 20 MB line is refused at once rather than encoded first."""
    n = 0
    for _ in _TOKEN_RE.finditer(text):
        n += 1
        if n >= stop_at:
            break
    return n


def split_words(text: str) -> list[str]:
    """Split like `tf.strings.split`: on ASCII whitespace, dropping empty pieces."""
    return [w for w in _TF_WHITESPACE_RE.split(text) if w]


@dataclass(frozen=True)
class Vocabulary:
    """An id ↔ word table in TextVectorization order: id 0 is '' (pad/stop), id 1 is '[UNK]'."""

    words: tuple[str, ...]
    lowercase: str = "ascii"  # "ascii" (TextVectorization's tf.strings.lower) or "unicode"
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.words) < 2 or self.words[PAD_ID] != "" or self.words[UNK_ID] != UNK_TOKEN:
            raise ValueError("a vocabulary must start with '' (pad/stop) and '[UNK]'")
        index: dict[str, int] = {}
        for i, w in enumerate(self.words):
            first = index.setdefault(w, i)
            if first != i:  # TextVectorization never repeats a word: the ids after it would be off by one
                raise ValueError(f"the vocabulary repeats the word {w!r} (ids {first} and {i})")
        object.__setattr__(self, "_index", index)

    @classmethod
    def from_list(cls, words: Iterable[str], lowercase: str = "ascii") -> Vocabulary:
        """Build from a TextVectorization `get_vocabulary()` list."""
        return cls(tuple(str(w) for w in words), lowercase=lowercase)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and word in self._index and self._index[word] > UNK_ID

    def prepare(self, text: str) -> list[str]:
        """Turn raw text into the word pieces the model sees (padded, lower-cased, split)."""
        return split_words(standardize(pad_punctuation(text), self.lowercase))

    def id_of(self, word: str) -> int:
        """Id of one already-standardized word, UNK_ID when unknown."""
        i = self._index.get(word, UNK_ID)
        return UNK_ID if i == PAD_ID else i

    def count_tokens(self, text: str, stop_at: int) -> int:
        """`count_tokens(text, stop_at)`: the number of ids `encode(text)` gives, up to `stop_at`."""
        return count_tokens(text, stop_at)

    def encode(self, text: str) -> list[int]:
        """Token ids for raw text, identical to TextVectorization on the padded text."""
        return [self.id_of(w) for w in self.prepare(text)]

    def word(self, token_id: int) -> str:
        """The word for one id (the empty string for the stop token)."""
        if 0 <= token_id < len(self.words):
            return self.words[token_id]
        raise IndexError(f"token id {token_id} is outside the vocabulary (size {len(self.words)})")

    def decode_tokens(self, ids: Sequence[int]) -> list[str]:
        """Words for ids, the stop token shown as nothing."""
        return [self.words[i] for i in ids if i != PAD_ID]

    def unknown_words(self, text: str) -> list[str]:
        """Words of `text` that are not in the vocabulary (they will become [UNK])."""
        return [w for w in self.prepare(text) if self.id_of(w) == UNK_ID]


# --- detokenizer ---------------------------------------------------------------------------------

_NO_SPACE_BEFORE = set(",.;:!?)]}%")
_NO_SPACE_AFTER = set("([{$#")
_GLUE = set("/-'")  # glued on both sides between two word-ish tokens: 1 / 2, well - done, don ' t


def _wordish(tok: str) -> bool:
    return bool(tok) and (tok[-1].isalnum() or tok[0].isalnum())


def detokenize(words: Sequence[str], capitalize: bool = True) -> str:
    """Join model words for reading: "1 / 2 cup , chopped ." → "1/2 cup, chopped."."""
    return "".join(detokenize_pieces(words, capitalize))


def detokenize_pieces(words: Sequence[str], capitalize: bool = True) -> list[str]:
    """What each word adds to `detokenize(words)`, its leading space included ("" for the stop token).

    Joined, the pieces are the readable text; one piece per word lets a view style each word (heat
    colours) or mark it (`:save`) without re-aligning text and words.
    """
    out: list[str] = []
    text_end = ""  # the last character written so far ("" at the start)
    group = ""  # the current run of words joined without spaces
    attach = False  # the next word joins the previous one without a space
    for i, w in enumerate(words):
        if not w:
            out.append("")
            continue
        glue = False
        if not group:
            piece = w
        elif attach or w in _NO_SPACE_BEFORE:
            piece = w
        elif w in _GLUE and _wordish(group) and i + 1 < len(words) and _wordish(words[i + 1]):
            piece, glue = w, True
        else:
            piece = " " + w
        spaced = piece[0] == " "
        # the text's first letter, or one after ". " / "| " (as a regex over the whole text would)
        if capitalize and ((not spaced and not text_end) or (spaced and text_end in _SENTENCE_END)):
            lead = 1 if spaced else 0
            if "a" <= piece[lead:lead + 1] <= "z":
                piece = piece[:lead] + piece[lead].upper() + piece[lead + 1:]
        group = group + piece if not spaced and group else piece.lstrip(" ")
        text_end = piece[-1]
        attach = True if glue else w in _NO_SPACE_AFTER
        out.append(piece)
    return out


_SENTENCE_END = set(".!?|")
