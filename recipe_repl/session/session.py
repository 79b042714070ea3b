"""A session: the loaded model, the live settings, the last prompt and samples, and the command runner.

The REPL and batch mode each drive one `Session` through a `Frontend`, which decides how samples
and messages look (streamed rich text on a terminal, plain lines or JSON Lines in batch).
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
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
from recipe_repl.model.vocab import UNK_ID, UNK_TOKEN, Vocabulary
from recipe_repl.plugin.commands import explain, is_command, parse_command
from recipe_repl.plugin.hookcall import one_line
from recipe_repl.plugin.manager import Plugins
from recipe_repl.session.records import sample_record
from recipe_repl.session.transcript import Transcript, TranscriptEntry

__all__ = ["CommandHandler", "Frontend", "ModelSpec", "Session", "sample_key", "sample_record"]


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


def sample_key(vocab: Vocabulary, prompt: str, index: int) -> int:
    """What seeds sample `index` of a prompt (with the settings' seed): the prompt as the model reads it
    and the sample's number. So with a seed, the same prompt gives the same samples every time it is
    typed, in any session, in batch mode on any line and at any batch size; other prompts draw
    independently."""
    reading = " ".join(vocab.prepare(prompt)).encode("utf-8", "surrogatepass")
    return zlib.crc32(reading) * 2**14 + index  # n ≤ 10,000 < 2**14 samples per prompt


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
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - a plugin's bug, even sys.exit(), must not end the session
            raise UserError(f":{spec.name} failed ({spec.plugin}): {one_line(exc)}") from None

    def prompt(self, text: str, n: int | None = None) -> list[Sample]:
        """Generate `n` (default: settings.n) samples for one prompt and show them."""
        text = text.strip()
        if not text:
            return []
        self.warn_unknown(text)
        return self.run_requests([text] * (n or self.copies()))

    def warn_unknown(self, text: str) -> None:
        """Say once per word which words of `text` the vocabulary lacks: the model reads [UNK] for them."""
        vocab = self.engine.vocab
        unknown = [w for w in vocab.prepare(text) if vocab.id_of(w) == UNK_ID and w != UNK_TOKEN.lower()]
        for word in dict.fromkeys(unknown):
            self.frontend.message(f"{word!r} is not in the vocabulary: the model reads {UNK_TOKEN}", "warning")

    def check_prompt(self, text: str) -> None:
        """A UserError when the model cannot take this prompt (no words it reads, or too long)."""
        encode_prompt(self.engine, text, self.max_prompt_tokens)

    def copies(self) -> int:
        """Samples per prompt: `n`, or one beam search (which gives `beam` samples) in beam mode."""
        return 1 if self.settings.beam else self.settings.n

    def run_requests(self, prompts: Sequence[str], resumes: Sequence[Any] | None = None,
                     chooser: Chooser = draw_chooser, live: bool = True,
                     before: NumberedText | None = None, indices: Sequence[int] | None = None,
                     model_probs: bool | None = None) -> list[Sample]:
        """Generate one sample per prompt (or per resume point), show them, and remember them.

        `chooser` picks each next word (default: the sampler draws); `live=False` skips the live view
        (`:pick` shows its own tables), the plugins' hooks still see every event. `before` is the text
        the first resume point reads on from (what is known of its words stays in `last_text`).
        `indices` numbers each prompt's samples (batch mode: per input line); by default the copies of
        one prompt are numbered 0, 1, … in order. `model_probs`: whether to record the model's
        probabilities of the words (default: when the frontend shows or writes them).

        Outside the REPL the samples are shown batch by batch as they finish (`generate --n 1000`
        streams its records, and a run stopped midway keeps what was written); the REPL shows them
        together. Once shown and recorded, a sample's top alternatives are let go: they are output
        (JSON records, `:save`), and N words at every step of thousands of samples would not fit in memory.
        """
        if model_probs is None:
            model_probs = self.wants_model_probs()
        if self.settings.beam and not resumes and chooser is draw_chooser:
            groups: Iterable[list[Sample]] = self._beams(prompts, model_probs)
        else:
            groups = self._generate(prompts, resumes, chooser, live, indices, model_probs)
        if self.frontend.interactive:
            groups = [[s for group in groups for s in group]]
        prompt = prompts[0] if prompts else ""
        kept: list[Sample] = []
        entry: TranscriptEntry | None = None  # a prompt's samples split over two batches stay one entry
        started = False
        for group in groups:
            if not started:
                self.remember(prompt, kept, before, first=group[0] if group else None, record=False)
                started = True
            entry = self._record(prompt, group, entry)
            kept += group  # `last_samples` is this list: it fills as batches finish
            self.frontend.show_samples(self, group)
            for sample in group:
                sample.alternatives = []
        if not started:
            self.remember(prompt, kept, before)
        broken = [s for s in kept if s.stop_reason == StopReason.NOT_FINITE]
        if broken:  # one line for the run, naming the first step and word where it happened
            more = f" ({len(broken)} samples ended this way)" if len(broken) > 1 else ""
            self.frontend.message(f"{broken[0].stop_detail}{more}", "error")
        return kept

    def _generate(self, prompts: Sequence[str], resumes: Sequence[Any] | None, chooser: Chooser,
                  live: bool, indices: Sequence[int] | None = None, model_probs: bool = True
                  ) -> Iterator[list[Sample]]:
        """The samples, batch by batch as the loop finishes them."""
        requests = []
        index_of: dict[str, int] = {}
        vocab = self.engine.vocab
        for i, p in enumerate(prompts):
            if indices is not None:
                idx = indices[i]
            else:
                idx = index_of.get(p, 0)
                index_of[p] = idx + 1
            resume = resumes[i] if resumes else None
            requests.append(Request(p, key=sample_key(vocab, p, idx), index=idx, resume=resume))
        listener = self.listener(live=live)
        method = "sample" if chooser is draw_chooser else "pick"
        samples = generate(self.engine, requests, self.settings, self.plugins.processor_specs(), listener,
                           self.batch_size, chooser, self.max_prompt_tokens, self.top_alternatives, method,
                           model_probs)
        while batch := list(itertools.islice(samples, self.batch_size)):  # the loop's own batches
            yield batch

    def wants_model_probs(self) -> bool:
        """Whether anything shows or writes the model's probabilities of the words: the REPL (footer, heat,
        :best), JSON records; plain-text batch output and silent samples skip them (a frontend says so
        with `model_probs = False`)."""
        return bool(getattr(self.frontend, "model_probs", True))

    def _beams(self, prompts: Sequence[str], model_probs: bool = True) -> Iterator[list[Sample]]:
        """Beam search for each prompt, prompt by prompt, the plugins hearing of it (not the live view: beams
        grow side by side); Ctrl-C ends the search under way and starts no other. `model_probs`: read back
        the model's probability of each beam's words."""
        from recipe_repl.generate.beam import beam_search

        listener = self.listener(live=False)
        for p in prompts:
            beams = beam_search(self.engine, p, self.settings, self.plugins.processor_specs(), self.settings.beam,
                                self.settings.length_penalty, self.max_prompt_tokens, key=self._sample_counter,
                                listener=listener)
            self._sample_counter += max(len(beams), 1)
            if model_probs:
                self._model_probs_of_beams(beams)
            yield beams
            if any(b.stop_reason == StopReason.INTERRUPTED for b in beams):
                break

    def _model_probs_of_beams(self, beams: list[Sample]) -> None:
        """The model's probability of each beam's words: its own ones when its chain (at temperature 1)
        changes nothing, else read back with one pass over each beam."""
        from recipe_repl.generate.beam import search_settings
        from recipe_repl.generate.inspection import reshapes
        from recipe_repl.generate.scoring import read_back

        specs, vocab = self.plugins.processor_specs(), self.engine.vocab
        same = bool(beams) and not reshapes(search_settings(beams[0].settings), specs, vocab)
        for beam in beams:
            if same:
                beam.model_probs, beam.stop_model_prob = list(beam.probs), beam.stop_prob
            else:
                context = [vocab.id_of(w) for w in beam.prompt_words]
                beam.model_probs, beam.stop_model_prob = read_back(self.engine, context, beam.token_ids,
                                                                   beam.stop_prob is not None)

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
                 text: NumberedText | None = None, first: Sample | None = None, record: bool = True) -> None:
        """Keep samples for `:continue` and `:save` (one entry per prompt: batch mode generates several at
        once), their prompt for `:probs`, and the first one's whole text as `last_text` (the one writer
        of all three).

        `before`: the text the first sample reads on from (`:continue`, `:branch`); `text`: the whole
        text when the caller knows it better than the sample does (`:back`). `first` is the first sample
        when `samples` is still being filled (batch by batch); `record=False` leaves the transcript to
        the caller (`_record`).
        """
        if prompt:
            self.last_prompt = prompt  # batch mode, :continue and :pick too, so :probs has a prompt
        self.last_samples = samples
        first = first or (samples[0] if samples else None)
        if text is not None:
            self.last_text = text
        elif first is not None:
            self.last_text = NumberedText.from_sample(first, self.engine.vocab, before)
        if record:
            self._record(prompt, samples)

    def _record(self, prompt: str, samples: list[Sample], previous: TranscriptEntry | None = None
                ) -> TranscriptEntry | None:
        """The transcript entries of some samples (one per prompt), unless this session keeps none; samples
        of the prompt of `previous` (the last entry of this generation) join it. Returns the last entry."""
        if not self.keep_transcript:
            return None
        settings = self.settings.as_dict()
        groups = [(p, list(g)) for p, g in itertools.groupby(samples, key=lambda s: s.prompt)]
        for line, group in groups or [(prompt, [])]:
            records = [sample_record(s) for s in group]
            if previous is not None and previous.text == line and self.transcript.extend_last(previous, records):
                continue
            previous = TranscriptEntry("prompt", line, settings, records)
            self.transcript.append(previous)
        return previous

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

    def prompt_or_ask(self, command: str) -> str:
        """The last prompt, or one asked of the person (interactive commands: `:pick`, `:step`); checked,
        so a bad prompt fails before any table, its unknown words named."""
        prompt = self.prompt_to_read()
        if not prompt:
            prompt = self.frontend.ask("prompt to start from: ").strip()
            if not prompt:
                raise UserError(f"no prompt: :{command} needs words to start from")
            self.warn_unknown(prompt)
        encode_prompt(self.engine, prompt, self.max_prompt_tokens)
        return prompt

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
