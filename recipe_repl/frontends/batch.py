"""Batch mode: prompts and `:commands` from a stream, samples to stdout (plain lines or JSON Lines).

Never imports prompt-toolkit. Prompts between two commands are generated together through the ONNX
batch dimension; output keeps input order and appears batch by batch; memory stays bounded however
long the input is.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any

from recipe_repl.base.errors import OutputError, UserError
from recipe_repl.base.sanitize import clean, dumps
from recipe_repl.generate.loop import Listener, NullListener, Sample
from recipe_repl.plugin.commands import is_command
from recipe_repl.session.session import Session, sample_record


class BatchFrontend:
    """Writes samples to `out` (one line each) and everything else to `err`."""

    interactive = False

    def __init__(self, out: IO[str], err: IO[str], json_lines: bool = False, full_text: bool = True) -> None:
        self.out, self.err, self.json_lines, self.full_text = out, err, json_lines, full_text
        self.model_probs = json_lines  # JSON records carry the model's probabilities; plain lines need none
        self.where = ""  # "line N: " while a batch input line is being handled

    def live_listener(self, session: Session) -> Listener:
        """Batch output is not streamed word by word."""
        return NullListener()

    def show_samples(self, session: Session, samples: list[Sample]) -> None:
        """One line per sample, sanitized (a word cannot break a line or reach the terminal raw); flushed
        so output appears batch by batch."""
        try:
            for s in samples:
                if self.json_lines:
                    line = dumps(sample_record(s))
                else:
                    line = clean(s.raw if s.settings.raw else (s.text if self.full_text else s.continuation))
                self.out.write(line + "\n")
            self.out.flush()
        except BrokenPipeError:
            raise  # the reader left (`| head`): the CLI ends quietly
        except OSError as exc:
            raise OutputError(exc.strerror or str(exc)) from None

    def message(self, text: str, kind: str = "info") -> None:
        """One line on stderr, sanitized."""
        prefix = {"error": "error: ", "warning": "warning: "}.get(kind, "")
        self.err.write(clean(f"{self.where}{prefix}{text}") + "\n")
        self.err.flush()

    def show(self, renderable: Any) -> None:
        """Tables go to stderr, rendered without colour when it is not a terminal."""
        from rich.console import Console

        from recipe_repl.views.render import print_safe

        print_safe(Console(file=self.err, highlight=False, soft_wrap=False), renderable)

    def ask(self, question: str) -> str:
        """Batch mode has nobody to ask."""
        raise UserError("this command needs an interactive terminal")


def read_lines(stream: IO[bytes]) -> Iterator[str]:
    """Decode a byte stream line by line; undecodable bytes are replaced, not fatal."""
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline=None)
    for line in text:
        yield line.rstrip("\n")


class BatchRunner:
    """Feeds input lines to a session, batching consecutive prompts."""

    def __init__(self, session: Session, frontend: BatchFrontend, progress: Any | None = None) -> None:
        self.session, self.frontend, self.progress = session, frontend, progress
        self.failed = 0
        self.pending: list[str] = []
        self.indices: list[int] = []  # each pending prompt's sample number on its own line (seeds it)
        self.done = 0

    def run(self, lines: Iterable[str]) -> int:
        """Process every line; return the exit status (1 if any line was bad)."""
        for number, line in enumerate(lines, start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if is_command(stripped):
                self.flush()
                self.frontend.where = f"line {number}: "
                try:
                    self.session.run_command(stripped)
                except OutputError:
                    raise  # nothing more can be written: stop here
                except UserError as exc:
                    self.frontend.message(str(exc), "error")
                    self.failed += 1
                self.frontend.where = ""
                if self.session.quit_requested:
                    break
                continue
            try:
                self.session.check_prompt(stripped)  # a bad prompt is one line's error, not the batch's
            except UserError as exc:
                self.frontend.where = f"line {number}: "
                self.frontend.message(str(exc), "error")
                self.frontend.where = ""
                self.failed += 1
                continue
            self.frontend.where = f"line {number}: "
            self.session.warn_unknown(stripped)
            self.frontend.where = ""
            copies = self.session.copies()
            self.pending.extend([stripped] * copies)
            self.indices.extend(range(copies))
            if len(self.pending) >= self.session.batch_size:
                self.flush()
        self.flush()
        return 1 if self.failed else 0

    def flush(self) -> None:
        """Generate the prompts collected so far."""
        if not self.pending:
            return
        prompts, self.pending = self.pending, []
        indices, self.indices = self.indices, []
        samples = self.session.run_requests(prompts, indices=indices)
        self.done += len(samples)
        if self.progress is not None:
            self.progress(self.done)
        if any(s.stop_reason.value == "not finite" for s in samples):
            self.failed += 1  # the session said where; the run's status says something went wrong
        if any(s.stop_reason.value == "interrupted" for s in samples):
            raise KeyboardInterrupt


def stderr_progress() -> Any | None:
    """A live count of samples on stderr when it is a terminal, else None."""
    if not sys.stderr.isatty():
        return None

    def show(done: int) -> None:
        sys.stderr.write(f"\r\x1b[2K{done} samples generated")
        sys.stderr.flush()

    return show
