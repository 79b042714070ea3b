"""A session: the loaded model, the live settings, the last prompt and samples, and the command runner.

The REPL and batch mode each drive one `Session` through a `Frontend`, which decides how samples
and messages look (streamed rich text on a terminal, plain lines or JSON Lines in batch).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from recipe_repl.base.config import Config
from recipe_repl.base.errors import BadValue, UsageError, UserError
from recipe_repl.base.sanitize import has_unsafe
from recipe_repl.base.settings import Settings
from recipe_repl.generate.loop import (
    MAX_PROMPT_TOKENS,
    Chooser,
    FanOut,
    Listener,
    NullListener,
    Request,
    Resume,
    Sample,
    StopReason,
    draw_chooser,
    encode_prompt,
    generate,
)
from recipe_repl.generate.numbering import NumberedText
from recipe_repl.model.engine import Engine
from recipe_repl.plugin.commands import explain, is_command, parse_command
from recipe_repl.plugin.manager import Plugins
from recipe_repl.session.transcript import Transcript, TranscriptEntry


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
class ModelSpec:
    """Which model to open and how."""

    path: Path
    provider: str = "auto"
    threads: int = 0
    vocab: Path | None = None  # a vocabulary file (`--vocab`) for a model that carries none


def sample_record(sample: Sample, with_text: bool = True) -> dict[str, Any]:
    """A sample as plain data (`--json`, `:save`), with every setting it was generated under."""
    return {
        "prompt": sample.prompt,
        "text": sample.text if with_text else sample.continuation,
        "continuation": sample.continuation,
        "prompt_tokens": sample.prompt_words,
        "tokens": sample.words,
        "token_ids": sample.token_ids,
        "stop_reason": sample.stop_reason.value,
        **sample.settings.as_dict(),
        "sample": sample.index,
        "method": sample.method,
        "token_probs": [round(p, 6) for p in sample.token_probs],
        "logprob_sum": _finite(sample.logprob_sum),
        "perplexity": _finite(sample.perplexity),
        **({"top_alternatives": [[{"word": w, "id": i, "prob": round(p, 6)} for i, w, p in step]
                                 for step in sample.alternatives]} if sample.alternatives else {}),
    }


def _finite(x: float | None) -> float | None:
    """JSON has no infinity: an impossible choice (probability 0) is recorded as null."""
    return None if x is None or not math.isfinite(x) else round(x, 6)


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
        max_prompt_tokens: int = MAX_PROMPT_TOKENS,
    ) -> None:
        self.plugins = plugins
        self.frontend = frontend
        self.model = model
        self._settings = settings or Settings()
        self.config = config or Config(Path("/nonexistent/config.toml"))
        self.batch_size = batch_size
        self.max_prompt_tokens = max_prompt_tokens
        self.top_alternatives = 0  # record the N most likely words at each step (`--top-alternatives`)
        self._engine = engine
        self.keep_transcript = keep_transcript  # `generate` keeps none: it has no `:save`
        self.last_prompt: str | None = None
        self.last_samples: list[Sample] = []
        self.last_text: NumberedText | None = None  # the last sample's whole text, or the text :score read
        self.transcript = Transcript()  # bounded: batch mode's input may be endless
        self.quit_requested = False
        self._sample_counter = 0  # numbers samples across the run: seeds each one's generator

    # --- the model -------------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The model, opened on first use."""
        if self._engine is None:
            self._engine = self._load(self.model)
        return self._engine

    def _load(self, spec: ModelSpec) -> Engine:
        engine: Engine = self.plugins.load_model(spec.path, spec.provider, spec.threads, vocab=spec.vocab)
        self._warn_unsafe_words(engine)
        return engine

    def switch_model(self, path: Path | None = None, provider: str | None = None) -> Engine:
        """Open another model or provider; on failure the old one stays and a UserError says why.

        The vocabulary file (`--vocab`) stays with the session: a notebook's model retrained and
        exported again reads the same vocabulary.
        """
        spec = replace(self.model, path=path or self.model.path, provider=provider or self.model.provider)
        engine = self._load(spec)
        self.model, self._engine = spec, engine
        self.last_samples = []  # their LSTM states belong to the old model
        self.last_text = None  # its ids are the old vocabulary's
        return engine

    def use_engine(self, engine: Engine) -> None:
        """Go on with another engine of the same model and vocabulary (`:ablate`'s changed model, or the
        model back): the last samples' resume points are recomputed under it, so `:continue` reads on
        from the same words through the new engine (their states are the old engine's)."""
        import numpy as np

        from recipe_repl.generate.loop import prefill

        def again(resume: Resume) -> Resume:
            last, state = prefill(engine, np.array([resume.history], dtype=np.int64), engine.start(1))
            return replace(resume, state=state, logits=last[0].copy(), pending=())

        self._engine = engine
        self.last_samples = [replace(s, resume=again(s.resume)) if s.resume and s.resume.history else s
                             for s in self.last_samples]

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
        """Parse and run one `:command` line; a wrong use or a bad value is answered with the fix."""
        name, args = parse_command(line)
        spec = self.plugins.commands.lookup(name)
        if spec.interactive_only and not self.frontend.interactive:
            raise UserError(f":{spec.name} needs an interactive terminal")
        if self.keep_transcript:
            self.transcript.append(TranscriptEntry("command", line.strip(), self.settings.as_dict()))
        try:
            spec.handler(self, args)
        except (UsageError, BadValue) as exc:  # completed with the command's usage or example
            raise UserError(explain(spec, exc)) from None
        except UserError:
            raise
        except Exception as exc:  # a plugin's bug must not end the session
            raise UserError(f":{spec.name} failed ({spec.plugin}): {type(exc).__name__}: {exc}") from None

    def prompt(self, text: str, n: int | None = None) -> list[Sample]:
        """Generate `n` (default: settings.n) samples for one prompt and show them."""
        text = text.strip()
        if not text:
            return []
        return self.run_requests([text] * (n or self.copies()))

    def check_prompt(self, text: str) -> None:
        """A UserError when the model cannot take this prompt (no words it reads, or too long)."""
        encode_prompt(self.engine, text, self.max_prompt_tokens)

    def copies(self) -> int:
        """Samples per prompt: `n`, or one beam search (which gives `beam` samples) in beam mode."""
        return 1 if self.settings.beam else self.settings.n

    def run_requests(self, prompts: Sequence[str], resumes: Sequence[Any] | None = None,
                     chooser: Chooser = draw_chooser, live: bool = True,
                     before: NumberedText | None = None) -> list[Sample]:
        """Generate one sample per prompt (or per resume point), show them, and remember them.

        `chooser` picks each next word (default: the sampler draws); `live=False` skips the live view
        (`:pick` shows its own tables), the plugins' hooks still see every event. `before` is the text
        the first resume point reads on from (what is known of its words stays in `last_text`).
        """
        if self.settings.beam and not resumes and chooser is draw_chooser:
            samples = self._beams(prompts)
        else:
            samples = self._generate(prompts, resumes, chooser, live)
        self.remember(prompts[0] if prompts else "", samples, before)
        self.frontend.show_samples(self, samples)
        return samples

    def _generate(self, prompts: Sequence[str], resumes: Sequence[Any] | None, chooser: Chooser,
                  live: bool) -> list[Sample]:
        requests = []
        index_of: dict[str, int] = {}
        for i, p in enumerate(prompts):
            idx = index_of.get(p, 0)
            index_of[p] = idx + 1
            requests.append(Request(p, key=self._sample_counter, index=idx, resume=resumes[i] if resumes else None))
            self._sample_counter += 1
        listener = self.listener(live=live)
        method = "sample" if chooser is draw_chooser else "pick"
        return list(generate(self.engine, requests, self.settings, self.plugins.processor_specs(), listener,
                             self.batch_size, chooser, self.max_prompt_tokens, self.top_alternatives, method))

    def _beams(self, prompts: Sequence[str]) -> list[Sample]:
        """Beam search for each prompt, the plugins hearing of it (not the live view: beams grow side by side);
        Ctrl-C ends the search under way and starts no other."""
        from recipe_repl.generate.beam import beam_search

        listener = self.listener(live=False)
        samples: list[Sample] = []
        for p in prompts:
            beams = beam_search(self.engine, p, self.settings, self.plugins.processor_specs(), self.settings.beam,
                                self.settings.length_penalty, self.max_prompt_tokens, key=self._sample_counter,
                                listener=listener)
            self._sample_counter += max(len(beams), 1)
            samples += beams
            if any(b.stop_reason == StopReason.INTERRUPTED for b in beams):
                break
        return samples

    def listener(self, extra: Listener | None = None, live: bool = True) -> Listener:
        """The live view (unless `live` is False) plus the plugins' hooks (plus `extra`)."""
        parts: list[Listener] = [self.frontend.live_listener(self)] if live else []
        plugin_listener = self.plugins.listener()
        if plugin_listener.active:
            parts.append(plugin_listener)
        if extra is not None:
            parts.append(extra)
        parts = [p for p in parts if not isinstance(p, NullListener)]
        if not parts:
            return NullListener()
        return parts[0] if len(parts) == 1 else FanOut(*parts)

    def remember(self, prompt: str, samples: list[Sample], before: NumberedText | None = None,
                 text: NumberedText | None = None) -> None:
        """Keep samples for `:continue` and `:save` (one entry per prompt: batch mode generates several at
        once), their prompt for `:probs`, and the first one's whole text as `last_text` (the one writer
        of all three).

        `before`: the text the first sample reads on from (`:continue`, `:branch`); `text`: the whole
        text when the caller knows it better than the sample does (`:back`).
        """
        if prompt:
            self.last_prompt = prompt  # batch mode, :continue and :pick too, so :probs has a prompt
        self.last_samples = samples
        if text is not None:
            self.last_text = text
        elif samples:
            self.last_text = NumberedText.from_sample(samples[0], self.engine.vocab, before)
        if self.keep_transcript:
            settings = self.settings.as_dict()
            groups = [(p, list(g)) for p, g in itertools.groupby(samples, key=lambda s: s.prompt)]
            for line, group in groups or [(prompt, [])]:
                self.transcript.append(TranscriptEntry("prompt", line, settings, [sample_record(s) for s in group]))

    # --- helpers for commands --------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The live settings; they change only through `update`."""
        return self._settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        self.update(value)

    def update(self, base: Settings | None = None, /, **changes: Any) -> Settings:
        """Change settings and return the new ones: `base` (e.g. a preset) replaces them all, `changes`
        single fields. Validated: on a bad value a UserError says why and nothing changes.

        The one writer of the settings: commands, plugins and frontends all come through here.
        """
        self._settings = (base or self._settings).replace(**changes)
        return self._settings

    def next_key(self) -> int:
        """A fresh sample number (for commands that generate on their own, like `:pick`)."""
        key = self._sample_counter
        self._sample_counter += 1
        return key

    def say(self, text: str) -> None:
        """An informational line."""
        self.frontend.message(text, "info")

    def prompt_to_read(self) -> str | None:
        """The last prompt typed (batch mode sets no `last_prompt`: there the last samples' prompt)."""
        if self.last_prompt:
            return self.last_prompt
        return self.last_samples[-1].prompt if self.last_samples else None

    def prompt_ids_for(self, command: str) -> tuple[str, list[int]]:
        """The last prompt and its ids, or a UserError telling the user to type one before `:command`."""
        prompt = self.prompt_to_read()
        if not prompt:
            raise UserError(f"no prompt yet: type a prompt (e.g. recipe for roast), then :{command}")
        return prompt, encode_prompt(self.engine, prompt, self.max_prompt_tokens)

    def text_for(self, command: str) -> NumberedText:
        """The last text (the last sample's, or the one `:score` read), or a UserError saying what to do."""
        if self.last_text is None:
            raise UserError(f"no sample yet: type a prompt first, then :{command} (or :score TEXT first)")
        return self.last_text

    def read_text(self, text: NumberedText) -> None:
        """Make `text` the last text (`:score`): word numbers now refer to it."""
        self.last_text = text

    def sample_for(self, command: str) -> Sample:
        """The last sample (the first of them when several were made), or a UserError saying what to do."""
        if not self.last_samples:
            raise UserError(f"no sample yet: type a prompt first, then :{command}")
        return self.last_samples[0]


CommandHandler = Callable[[Session, str], None]
