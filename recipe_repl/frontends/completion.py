"""The REPL's input helpers: tab completion, the lexer that marks future [UNK]s, the processor that shows
control and bidi characters escaped in the input line, the bottom toolbar.

Each gets a `session_of()` callable rather than the session itself: the REPL builds its frontend
before the session exists (the session needs the frontend).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.layout.processors import Processor, Transformation, TransformationInput
from prompt_toolkit.layout.utils import explode_text_fragments
from prompt_toolkit.lexers import Lexer
from prompt_toolkit.styles import Style

from recipe_repl.base.sanitize import escape_char, is_unsafe
from recipe_repl.plugin.commands import is_command
from recipe_repl.session.session import Session
from recipe_repl.views.render import safe

SessionOf = Callable[[], Session | None]
MAX_WORD_COMPLETIONS = 200

# The tokenizer splits on ASCII whitespace only (like tf.strings.split); the lexer must agree.
_WS_RE = re.compile(r"([ \t\n\v\f\r]+)")

STYLE = Style.from_dict(
    {
        "prompt": "ansicyan bold",
        "command": "ansicyan",
        "command.unknown": "ansired",
        "unknown-word": "ansimagenta underline",
        "escaped": "ansiyellow",
        "bottom-toolbar": "noreverse bg:#303030 #d0d0d0",
        "bottom-toolbar.key": "bold",
    }
)


class ReplCompleter(Completer):
    """`:command` names, each command's arguments (its `complete(session, text)`), and vocabulary words."""

    def __init__(self, session_of: SessionOf) -> None:
        self.session_of = session_of

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        """Completions for the text before the cursor."""
        session = self.session_of()
        if session is None:
            return
        text = document.text_before_cursor
        if is_command(text):
            yield from self._command(session, text.lstrip())
        else:
            yield from self._words(session, text)

    def _command(self, session: Session, text: str) -> Iterator[Completion]:
        name, space, args = text[1:].partition(" ")
        commands = session.plugins.commands
        if not space:
            for candidate in commands.all_names():
                if candidate.startswith(name.lower()):
                    spec = commands.get(candidate)
                    yield Completion(":" + candidate, start_position=-len(text),
                                     display_meta=safe(spec.help) if spec else "")
            return
        spec = commands.get(name.lower())
        if spec is None or spec.complete is None:
            return
        args = args.lstrip()
        try:
            candidates = list(spec.complete(session, args))
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001 - a plugin's completer (even sys.exit) must never break typing
            return
        last = args.rsplit(" ", 1)[-1] if args else ""
        for c in candidates:
            c = str(c)
            if c.startswith(args) and c != args:
                yield Completion(c, start_position=-len(args), display=safe(c))
            elif last != args and c.startswith(last) and c != last:
                yield Completion(c, start_position=-len(last), display=safe(c))

    def _words(self, session: Session, text: str) -> Iterator[Completion]:
        last = _WS_RE.split(text)[-1]
        if not last:
            return
        prefix = last.lower()
        count = 0
        for w in session.engine.vocab.words[2:]:  # frequency order; '' and [UNK] are not words to type
            if w.startswith(prefix) and w != prefix:
                yield Completion(w, start_position=-len(last), display=safe(w))
                count += 1
                if count >= MAX_WORD_COMPLETIONS:
                    return


class ReplLexer(Lexer):
    """Colours `:command` lines, and underlines prompt words the model does not know (they become [UNK])."""

    def __init__(self, session_of: SessionOf) -> None:
        self.session_of = session_of

    def lex_document(self, document: Document) -> Callable[[int], StyleAndTextTuples]:
        """Style each line of the input."""
        lines = document.lines

        def get_line(lineno: int) -> StyleAndTextTuples:
            try:
                return self.lex_line(lines[lineno])
            except IndexError:
                return []

        return get_line

    def lex_line(self, line: str) -> StyleAndTextTuples:
        """The styled fragments of one line."""
        session = self.session_of()
        if session is None:
            return [("", line)]
        if is_command(line):
            indent = line[: len(line) - len(line.lstrip())]
            head, space, rest = line.lstrip().partition(" ")
            known = session.plugins.commands.get(head[1:].lower()) is not None or head == ":"
            return [("", indent), ("class:command" if known else "class:command.unknown", head), ("", space + rest)]
        vocab = session.engine.vocab
        fragments: StyleAndTextTuples = []
        for chunk in _WS_RE.split(line):
            if not chunk or _WS_RE.fullmatch(chunk):
                fragments.append(("", chunk))
                continue
            unknown = bool(vocab.unknown_words(chunk))
            fragments.append(("class:unknown-word" if unknown else "", chunk))
        return fragments


class EscapeUnsafe(Processor):
    """Shows every control, bidi or other format character of the input line as its escape (`\\u202e`).

    A pasted U+202E would reverse the rest of the line on the screen, a U+2066 isolate it: the line
    the person types is untrusted text like any other. The lexer styles the words; this processor
    (prompt-toolkit's way to show a line other than as typed, as its TabsProcessor does for tabs)
    replaces such a character by its escape and keeps the cursor where it belongs.
    """

    def apply_transformation(self, ti: TransformationInput) -> Transformation:
        """The line's fragments with unsafe characters escaped, and the cursor mappings."""
        if all(text.isprintable() for _, text, *_ in ti.fragments):
            return Transformation(ti.fragments)  # the common case: nothing to show differently
        fragments = explode_text_fragments(ti.fragments)
        to_display = []
        result: StyleAndTextTuples = []
        pos = 0
        for style, char, *_ in fragments:
            to_display.append(pos)
            if is_unsafe(char):
                shown = escape_char(char)
                result.append((f"{style} class:escaped", shown))
                pos += len(shown)
            else:
                result.append((style, char))
                pos += 1
        to_display += [pos, pos + 1]  # the cursor may sit after the last character

        def source_to_display(i: int) -> int:
            return to_display[min(i, len(to_display) - 1)]

        def display_to_source(d: int) -> int:
            return max((i for i, p in enumerate(to_display) if p <= d), default=0)

        return Transformation(result, source_to_display=source_to_display, display_to_source=display_to_source)


def unknown_words(session: Session, line: str) -> list[str]:
    """The words of a prompt line that the model will read as [UNK]."""
    return session.engine.vocab.unknown_words(line)


def toolbar(session_of: SessionOf) -> Callable[[], StyleAndTextTuples]:
    """The bottom toolbar: live settings, model and provider (plain fragments, never markup)."""

    def render() -> StyleAndTextTuples:
        session = session_of()
        if session is None:
            return []
        s = session.settings
        info = session.engine.info
        items: Iterable[tuple[str, str]] = (
            ("T", f"{s.temperature:g}"),
            ("top-k", str(s.top_k) if s.top_k else "off"),
            ("top-p", f"{s.top_p:g}" if s.top_p < 1 else "off"),
            ("max", str(s.max_tokens)),
            ("seed", "off" if s.seed is None else str(s.seed)),
            ("n", str(s.n)),
            ("model", safe(info.name)),
            ("on", info.provider),
        )
        out: StyleAndTextTuples = []
        for i, (key, value) in enumerate(items):
            if i:
                out.append(("class:bottom-toolbar", "  "))
            out.append(("class:bottom-toolbar.key", f" {key} "))
            out.append(("class:bottom-toolbar", value))
        return out

    return render
