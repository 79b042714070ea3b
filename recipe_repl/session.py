"""A session: the loaded model, the live settings, the last prompt and samples, and the command runner.

The REPL and batch mode each drive one `Session` through a `Frontend`, which decides how samples
and messages look (streamed rich text on a terminal, plain lines or JSON Lines in batch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from recipe_repl.commands import is_command, parse_command
from recipe_repl.config import Config
from recipe_repl.engine import Engine
from recipe_repl.errors import UserError
from recipe_repl.generation import FanOut, Listener, NullListener, Request, Sample, generate
from recipe_repl.plugins import Plugins
from recipe_repl.sanitize import has_unsafe
from recipe_repl.settings import Settings


class Frontend(Protocol):
    """How a session shows things: the REPL's and batch mode's views implement it."""

    interactive: bool

    def live_listener(self, session: Session) -> Listener:
        """A listener that shows a generation as it happens (or a NullListener)."""
        ...

    def show_samples(self, session: Session, samples: list[Sample]) -> None:
        """Show finished samples."""
        ...

    def message(self, text: str, kind: str = "info") -> None:
        """Show one line: kind is "info", "warning" or "error"."""
        ...

    def show(self, renderable: Any) -> None:
        """Show a rich renderable (tables for `:probs`, `:compare`, `:settings`)."""
        ...

    def ask(self, question: str) -> str:
        """Ask the person at the keyboard for a line (interactive commands only)."""
        ...


@dataclass
class TranscriptEntry:
    """One thing that happened, for `:save`."""

    kind: str  # "prompt" or "command"
    text: str
    settings: dict[str, Any]
    samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ModelSpec:
    """Which model to open and how."""

    path: Path
    provider: str = "auto"
    threads: int = 0


def sample_record(sample: Sample, with_text: bool = True) -> dict[str, Any]:
    """A sample as plain data (`--json`, `:save`)."""
    s = sample.settings
    return {
        "prompt": sample.prompt,
        "text": sample.text if with_text else sample.continuation,
        "continuation": sample.continuation,
        "tokens": sample.words,
        "token_ids": sample.token_ids,
        "stop_reason": sample.stop_reason.value,
        "temperature": s.temperature,
        "top_k": s.top_k,
        "top_p": s.top_p,
        "min_p": s.min_p,
        "repetition_penalty": s.repetition_penalty,
        "max_tokens": s.max_tokens,
        "seed": s.seed,
        "sample": sample.index,
    }


class Session:
    """Live state shared by every command and prompt of one run."""

    def __init__(
        self,
        plugins: Plugins,
        frontend: Frontend,
        model: ModelSpec,
        settings: Settings | None = None,
        config: Config | None = None,
        batch_size: int = 32,
        engine: Engine | None = None,
        keep_transcript: bool = True,
    ) -> None:
        self.plugins = plugins
        self.frontend = frontend
        self.model = model
        self.settings = settings or Settings()
        self.config = config or Config(Path("/nonexistent/config.toml"))
        self.batch_size = batch_size
        self._engine = engine
        self.keep_transcript = keep_transcript  # batch mode keeps none: its input may be endless
        self.last_prompt: str | None = None
        self.last_samples: list[Sample] = []
        self.transcript: list[TranscriptEntry] = []
        self.quit_requested = False
        self._sample_counter = 0  # numbers samples across the run: seeds each one's generator

    # --- the model -------------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The model, opened on first use."""
        if self._engine is None:
            self._engine = self.plugins.load_model(self.model.path, self.model.provider, self.model.threads)
            self._warn_unsafe_words(self._engine)
        return self._engine

    def switch_model(self, path: Path | None = None, provider: str | None = None) -> Engine:
        """Open another model or provider; on failure the old one stays and a UserError says why."""
        spec = ModelSpec(path or self.model.path, provider or self.model.provider, self.model.threads)
        engine = self.plugins.load_model(spec.path, spec.provider, spec.threads)
        self._warn_unsafe_words(engine)
        self.model, self._engine = spec, engine
        self.last_samples = []  # their LSTM states belong to the old model
        return engine

    def _warn_unsafe_words(self, engine: Engine) -> None:
        """Say once, when a model loads, that its vocabulary holds control or bidi characters."""
        count = sum(1 for w in engine.vocab.words if has_unsafe(w))
        if count:
            self.frontend.message(f"model {engine.info.name}: {count} word{'s' if count != 1 else ''} of its "
                                  "vocabulary hold control or bidi characters; they are shown escaped", "warning")

    # --- input lines -----------------------------------------------------------------------------

    def handle_line(self, line: str) -> list[Sample]:
        """Run one input line: a `:command` or a prompt. UserErrors propagate to the frontend."""
        if is_command(line):
            self.run_command(line)
            return []
        return self.prompt(line)

    def run_command(self, line: str) -> None:
        """Parse and run one `:command` line."""
        name, args = parse_command(line)
        spec = self.plugins.commands.lookup(name)
        if spec.interactive_only and not self.frontend.interactive:
            raise UserError(f":{spec.name} needs an interactive terminal")
        if self.keep_transcript:
            self.transcript.append(TranscriptEntry("command", line.strip(), self.settings.as_dict()))
        try:
            spec.handler(self, args)
        except UserError:
            raise
        except Exception as exc:  # a plugin's bug must not end the session
            raise UserError(f":{spec.name} failed ({spec.plugin}): {type(exc).__name__}: {exc}") from None

    def prompt(self, text: str, n: int | None = None) -> list[Sample]:
        """Generate `n` (default: settings.n) samples for one prompt and show them."""
        text = text.strip()
        if not text:
            return []
        return self.run_requests([text] * (n or self.settings.n))

    def run_requests(self, prompts: Sequence[str], resumes: Sequence[Any] | None = None) -> list[Sample]:
        """Generate one sample per prompt (or per resume point), show them, and remember them."""
        requests = []
        index_of: dict[str, int] = {}
        for i, p in enumerate(prompts):
            idx = index_of.get(p, 0)
            index_of[p] = idx + 1
            requests.append(Request(p, key=self._sample_counter, index=idx, resume=resumes[i] if resumes else None))
            self._sample_counter += 1
        listener = self.listener()
        samples = list(
            generate(self.engine, requests, self.settings, self.plugins.processor_specs(), listener, self.batch_size)
        )
        if prompts:
            self.last_prompt = prompts[0]  # batch mode and :continue too, so :probs has a prompt
        self.remember(prompts[0] if prompts else "", samples)
        self.frontend.show_samples(self, samples)
        return samples

    def listener(self, extra: Listener | None = None) -> Listener:
        """The live view plus the plugins' hooks (plus `extra`)."""
        parts: list[Listener] = [self.frontend.live_listener(self)]
        plugin_listener = self.plugins.listener()
        if plugin_listener.active:
            parts.append(plugin_listener)
        if extra is not None:
            parts.append(extra)
        parts = [p for p in parts if not isinstance(p, NullListener)]
        return parts[0] if len(parts) == 1 else FanOut(*parts)

    def remember(self, prompt: str, samples: list[Sample]) -> None:
        """Keep samples for `:continue` and `:save`."""
        self.last_samples = samples
        if self.keep_transcript:
            self.transcript.append(
                TranscriptEntry("prompt", prompt, self.settings.as_dict(), [sample_record(s) for s in samples])
            )

    # --- helpers for commands --------------------------------------------------------------------

    def update(self, **changes: Any) -> Settings:
        """Change settings (validated; on a bad value nothing changes) and return the new ones."""
        self.settings = self.settings.replace(**changes)
        return self.settings

    def next_key(self) -> int:
        """A fresh sample number (for commands that generate on their own, like `:pick`)."""
        key = self._sample_counter
        self._sample_counter += 1
        return key

    def say(self, text: str) -> None:
        """An informational line."""
        self.frontend.message(text, "info")


CommandHandler = Callable[[Session, str], None]
