"""The one sanitizer for text from outside on its way out: to a terminal, a pipe, a log or a saved file.

A model file, an input line, a path, a config value and a plugin's message are all untrusted: a word
in a vocabulary can hold `ESC ] 0 ; title BEL` (retitles the terminal), `CSI ? 1049 h` (switches
screens), a C1 `CSI` (0x9b, the same in one byte) or a right-to-left override that makes text read
backwards. Every output of the tool passes its untrusted strings through `clean` (text) or `dumps`
(JSON), which show such characters as visible escapes and never send them raw.

"Unsafe" here means the Unicode categories Cc (C0 controls, DEL, C1 controls), Cf (format characters:
the bidi embeddings/overrides/isolates U+202A–U+202E and U+2066–U+2069, the marks U+200E/U+200F/U+061C,
zero-width characters, the BOM…), Zl/Zp (line and paragraph separators) and Cs (lone surrogates, as
undecodable bytes in a file name become). Imports only the standard library: batch mode uses it
without rich.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any

UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})

# Printable ASCII is always safe; only the rest needs a look at its category (fast on plain text).
_SUSPECT = re.compile(r"[^\x20-\x7e]")


def is_unsafe(ch: str) -> bool:
    """Whether one character must never reach a terminal raw (a control, format or separator character)."""
    return unicodedata.category(ch) in UNSAFE_CATEGORIES


def has_unsafe(text: str) -> bool:
    """Whether `text` holds any character that `clean` would escape (newlines included)."""
    if text.isprintable():  # the common case, in C
        return False
    return any(is_unsafe(m.group()) for m in _SUSPECT.finditer(text))


def escape_char(ch: str) -> str:
    """A visible escape for one character: `\\x1b`, `\\u202e`, `\\U000e0001`."""
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def clean(text: str, keep: str = "") -> str:
    """`text` with every unsafe character shown as a visible escape (ESC → `\\x1b`, U+202E → `\\u202e`).

    Characters in `keep` (say "\\n" for a multi-line report) are left alone. Escaped text is all
    printable, so cleaning twice changes nothing.
    """
    if text.isprintable():
        return text

    def one(m: re.Match[str]) -> str:
        ch = m.group()
        return escape_char(ch) if ch not in keep and is_unsafe(ch) else ch

    return _SUSPECT.sub(one, text)


def line(text: object) -> str:
    """Any value as one safe line of text: newlines and every other unsafe character escaped."""
    return clean(str(text))


def _json_escape(m: re.Match[str]) -> str:
    ch = m.group()
    if ch == "\n" or not is_unsafe(ch):  # a raw newline in json.dumps output is indentation, never data
        return ch
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # JSON spells characters beyond the BMP as a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def dumps(data: Any, **kwargs: Any) -> str:
    """`json.dumps(data, ensure_ascii=False)` with every unsafe character escaped as `\\uXXXX`.

    json.dumps escapes only C0 controls; DEL, C1 controls and bidi overrides would pass raw. The
    escapes are valid JSON for the same values, so `json.loads` gives back the original text.
    JSON has no NaN or infinity (json.dumps would write a bare `NaN`, which no strict parser reads):
    such a number, wherever it sits in `data`, is written as null.
    """
    try:
        text = json.dumps(data, ensure_ascii=False, allow_nan=False, **kwargs)
    except ValueError:  # a float that is not finite somewhere: the rare path
        text = json.dumps(_finite(data), ensure_ascii=False, allow_nan=False, **kwargs)
    return text if text.isprintable() else _SUSPECT.sub(_json_escape, text)


def _finite(data: Any) -> Any:
    """`data` with every float that is not finite (NaN, ±inf, numpy's too) replaced by None."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(v) for v in data]
    return data
