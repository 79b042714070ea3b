"""The engine interface and its ONNX Runtime implementation.

An `Engine` turns token ids plus a state into next-word logits plus a new state. A stateful model
(the contract in `contract.py`) carries the LSTM's (h, c), so each generated token costs one step.
A stateless model (tokens → probabilities, as the lecture's own export gives) keeps the prefix as its
"state" and re-feeds it every step: slower, but any such file runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from recipe_repl.base import reading
from recipe_repl.base.errors import ModelError, UserError
from recipe_repl.model import contract
from recipe_repl.model.vocab import Vocabulary

if TYPE_CHECKING:
    import onnxruntime as ort

PROVIDERS = ("auto", "cpu", "cuda")
MAX_THREADS = 64  # ONNX Runtime starts every thread at once: 5000 took over a minute before the first word
_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"


class State(Protocol):
    """Per-row generation state; rows can be selected and concatenated."""

    @property
    def batch_size(self) -> int: ...

    def take(self, rows: Sequence[int] | np.ndarray) -> State: ...


class Engine(Protocol):
    """What the generation loop needs from a model."""

    vocab: Vocabulary
    info: ModelInfo

    def start(self, batch_size: int) -> State:
        """A fresh state for `batch_size` rows."""
        ...

    def forward(self, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """Feed tokens [batch, time]; return logits float32 [batch, time, vocab] and the new state."""
        ...

    def concat(self, states: Sequence[State]) -> State:
        """Stack the rows of several states into one."""
        ...


@dataclass(frozen=True)
class ModelInfo:
    """What is known about a loaded model, for `:settings`, the toolbar and `--json`."""

    path: str
    kind: str  # "stateful" or "stateless"
    provider: str  # "cpu" or "cuda"
    vocab_size: int
    config: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    sample_texts: tuple[str, ...] = ()  # a few held-out recipes bundled by the export (`:cells find`)
    sample_source: str = ""  # where they come from, in words

    @property
    def name(self) -> str:
        """The file name, for display."""
        return Path(self.path).name


@dataclass(frozen=True)
class RecurrentState:
    """The LSTM state: one array per state input, batch axis first."""

    arrays: tuple[np.ndarray, ...]

    @property
    def batch_size(self) -> int:
        """Number of rows."""
        return int(self.arrays[0].shape[0])

    def take(self, rows: Sequence[int] | np.ndarray) -> RecurrentState:
        """Keep only the given rows, in that order."""
        idx = np.asarray(rows, dtype=np.intp)
        return RecurrentState(tuple(a[idx] for a in self.arrays))


@dataclass(frozen=True)
class PrefixState:
    """A stateless model's "state": every row's tokens so far."""

    prefixes: tuple[np.ndarray, ...]

    @property
    def batch_size(self) -> int:
        """Number of rows."""
        return len(self.prefixes)

    def take(self, rows: Sequence[int] | np.ndarray) -> PrefixState:
        """Keep only the given rows, in that order."""
        return PrefixState(tuple(self.prefixes[int(i)] for i in rows))


def available_providers() -> list[str]:
    """ONNX Runtime execution providers this installation offers."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def auto_threads(interactive: bool) -> int:
    """ONNX Runtime intra-op threads when none are asked for (`--threads 0`), by use.

    Interactive (the REPL: one sample, batch 1): 1 thread. A step at batch 1 is too small to split,
    and ONNX Runtime's default (a thread per core) keeps a second core busy-waiting while the words
    are sampled and shown: ~1.8x the CPU time for no faster words (`make bench`). Batch mode and
    `generate` (many rows a step): 0, ONNX Runtime's default, a thread per core.
    """
    return 1 if interactive else 0


def check_threads(threads: int) -> int:
    """The thread count, or a UserError naming the bound (0 = ONNX Runtime's default)."""
    if not 0 <= threads <= MAX_THREADS:
        raise UserError(f"threads must be between 0 (ONNX Runtime's default) and {MAX_THREADS}, not {threads}")
    return threads


def _session_options(threads: int, spinning: bool | None = None) -> ort.SessionOptions:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # ORT warnings would land in the user's terminal mid-REPL
    if threads > 0:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    if spinning is not None:
        # ORT's idle workers busy-wait for the next op by default: a whole core at batch 1 for a few
        # per cent of speed. Off, they sleep between ops (and between tokens).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    # A model given as bytes would find the external data files it names in the working folder: point
    # ONNX Runtime at a folder that cannot exist (below /dev/null), so a model file never chooses a
    # file for the tool to read.
    opts.add_session_config_entry("session.model_external_initializers_file_folder_path",
                                  os.path.join(os.devnull, "no-external-data"))
    return opts


def open_session(path: Path, provider: str = "auto", threads: int = 0,
                 spinning: bool | None = None) -> tuple[ort.InferenceSession, str]:
    """Open an ONNX Runtime session on the asked provider; return it with the provider really used.

    The file is read through the one bounded reader (a regular file within `reading.MODEL`'s limit)
    and handed to ONNX Runtime as bytes: a model that names external data files cannot make the
    tool read them (it fails to load, in one line).
    `threads` are ONNX Runtime's intra-op threads (0: its default, one per core); `spinning` lets
    its idle workers busy-wait (None: its default, which spins).
    ONNX Runtime silently falls back from CUDA to CPU with only a log line, so the providers the
    session really got are checked here and a failed explicit `cuda` request is an error.
    """
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # its warnings (say, no writable HOME for telemetry) are not the user's
    if provider not in PROVIDERS:
        raise UserError(f"unknown provider {provider!r}: choose one of {', '.join(PROVIDERS)}")
    check_threads(threads)
    offered = ort.get_available_providers()
    if provider == "cuda" and _CUDA not in offered:
        raise UserError(
            "CUDA was asked for, but this onnxruntime offers no CUDAExecutionProvider "
            "(install recipe-repl[cuda], which replaces onnxruntime with onnxruntime-gpu)"
        )
    wanted = [_CUDA, _CPU] if provider in ("cuda", "auto") and _CUDA in offered else [_CPU]
    data = reading.read_bytes(path, reading.MODEL, ModelError)
    try:
        session = ort.InferenceSession(data, sess_options=_session_options(threads, spinning), providers=wanted)
    except Exception as exc:  # ORT raises its own exception types for corrupt or foreign files
        raise ModelError(f"cannot load model {path}: {_first_line(exc)}") from None
    finally:
        del data  # ORT keeps its own copy: the file's bytes are not held twice
    used = session.get_providers()
    got = "cuda" if used and used[0] == _CUDA else "cpu"
    if provider == "cuda" and got != "cuda":
        raise UserError("CUDA was asked for, but ONNX Runtime could not use it (check the CUDA/cuDNN libraries)")
    return session, got


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def _read_vocab(path: Path) -> list[str]:
    """A `--vocab` file through the one bounded reader: one word a line, or a JSON list of words."""
    text = reading.read_text(path, reading.VOCAB)
    if path.suffix == ".json":
        words = reading.parse_json(text, f"vocabulary {path}")
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise UserError(f"vocabulary {path} must be a JSON list of words (strings)")
        return words
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


def _meta_json(meta: dict[str, str], key: str, path: Path, kind: type = dict) -> Any:
    raw = meta.get(key)
    if raw is None:
        return kind()
    value = reading.parse_json(raw, f"model {path}: metadata {key!r}", ModelError)
    if not isinstance(value, kind):
        raise ModelError(f"model {path}: metadata {key!r} is not a JSON {'object' if kind is dict else 'list'}")
    return value


MAX_SAMPLE_TEXTS = 256  # a model file is untrusted: what it bundles is bounded
MAX_SAMPLE_CHARS = 20_000


def _sample_texts(meta: dict[str, str], path: Path) -> dict[str, Any]:
    """The held-out texts a model bundles (bounded; a malformed entry is a ModelError like other metadata)."""
    found = _meta_json(meta, contract.META_SAMPLE_TEXTS, path)
    texts = found.get("texts", [])
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ModelError(f"model {path}: metadata {contract.META_SAMPLE_TEXTS!r} holds no list of texts")
    return {"sample_texts": tuple(t[:MAX_SAMPLE_CHARS] for t in texts[:MAX_SAMPLE_TEXTS]),
            "sample_source": str(found.get("source", ""))[:200]}


def _specs(args: Sequence[Any]) -> list[contract.TensorSpec]:
    return [contract.TensorSpec(a.name, a.type, tuple(a.shape)) for a in args]


class OnnxEngine:
    """An ONNX Runtime session behind the `Engine` interface (stateful or stateless models).

    Opening one checks the file against the contract (`contract.check_signature`) and runs one probe
    step, so that a foreign or broken model is one clear error now, not an IndexError mid-generation.
    """

    def __init__(
        self,
        path: Path | str,
        provider: str = "auto",
        threads: int = 0,
        vocab_path: Path | None = None,
        spinning: bool | None = None,
    ) -> None:
        path = Path(path)
        if not path.exists():
            raise UserError(f"model file not found: {path}")
        self.session, used = open_session(path, provider, threads, spinning)
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        if vocab_path is not None:
            words = _read_vocab(vocab_path)
        elif contract.META_VOCAB in meta:
            words = _meta_json(meta, contract.META_VOCAB, path, list)
            if not all(isinstance(w, str) for w in words):
                raise ModelError(f"model {path}: the vocabulary is not a list of words")
        else:
            raise ModelError(f"model {path} carries no vocabulary: pass --vocab FILE")
        try:
            self.vocab = Vocabulary.from_list(words, lowercase=meta.get(contract.META_LOWERCASE, "ascii"))
            roles = contract.check_signature(_specs(self.session.get_inputs()), _specs(self.session.get_outputs()),
                                             len(self.vocab))
        except ValueError as exc:
            raise ModelError(f"model {path}: {exc}") from None
        self.roles = roles
        self.stateful = roles.stateful
        self._state_inputs = list(roles.state_inputs)
        self._state_shapes = list(roles.state_shapes)
        self._fetch = [roles.logits, *roles.state_outputs]
        types = {i.name: i.type for i in self.session.get_inputs()}
        self._token_dtype = _numpy_dtype(types[roles.tokens])
        out_types = {o.name: o.type for o in self.session.get_outputs()}
        self._float32_logits = out_types[roles.logits] == "tensor(float)"
        probe = self._probe(path)
        self._probs = meta.get(contract.META_OUTPUT_KIND) == "probs" or (
            not self.stateful and contract.META_OUTPUT_KIND not in meta and _looks_like_probs(probe)
        )
        self.info = ModelInfo(
            path=str(path),
            kind="stateful" if self.stateful else "stateless",
            provider=used,
            vocab_size=len(self.vocab),
            config=_meta_json(meta, contract.META_CONFIG, path),
            training=_meta_json(meta, contract.META_TRAINING, path),
            parity=_meta_json(meta, contract.META_PARITY, path),
            **_sample_texts(meta, path),
        )

    def _token_input(self) -> str:
        return self.roles.tokens

    def _probe(self, path: Path) -> np.ndarray:
        """Run one step of two rows of two tokens; check every output's shape, type and values."""
        tokens = np.full((2, 2), min(2, len(self.vocab) - 1), dtype=self._token_dtype)
        feed: dict[str, np.ndarray] = {self.roles.tokens: tokens}
        feed.update((n, np.zeros((2, *s), dtype=np.float32))
                    for n, s in zip(self._state_inputs, self._state_shapes, strict=True))
        try:
            outputs = self.session.run(self._fetch, feed)
        except Exception as exc:  # ORT's own exception types: shapes the graph cannot take, and the like
            raise ModelError(f"model {path} fails a probe step: {_first_line(exc)}") from None
        logits, states = np.asarray(outputs[0]), outputs[1:]
        size = len(self.vocab)
        wanted = [(2, 2, size)] if self.stateful else [(2, 2, size), (2, size)]
        if logits.shape not in wanted or logits.dtype.kind != "f":
            raise ModelError(f"model {path}: a probe step gave logits {logits.dtype}{list(logits.shape)}, "
                             f"not float[2, 2, {size}]")
        for name, shape, value in zip(self.roles.state_outputs, self._state_shapes, states, strict=True):
            value = np.asarray(value)
            if value.shape != (2, *shape) or value.dtype != np.float32:
                raise ModelError(f"model {path}: a probe step gave state {name!r} {value.dtype}{list(value.shape)}, "
                                 f"not float32{[2, *shape]}")
            if not np.isfinite(value).all():
                raise ModelError(f"model {path}: a probe step gave non-finite values (NaN or inf) in state {name!r}")
        if not np.isfinite(logits).all():
            raise ModelError(f"model {path}: a probe step gave non-finite values (NaN or inf) in the logits")
        return logits

    def start(self, batch_size: int) -> State:
        """A zero LSTM state (stateful) or empty prefixes (stateless) for `batch_size` rows."""
        if self.stateful:
            return RecurrentState(tuple(np.zeros((batch_size, *s), dtype=np.float32) for s in self._state_shapes))
        return PrefixState(tuple(np.zeros(0, dtype=np.int64) for _ in range(batch_size)))

    def concat(self, states: Sequence[State]) -> State:
        """Stack the rows of several states of this engine."""
        if self.stateful:
            parts = [s.arrays for s in states if isinstance(s, RecurrentState)]
            return RecurrentState(tuple(np.concatenate(col, axis=0) for col in zip(*parts, strict=True)))
        return PrefixState(tuple(p for s in states if isinstance(s, PrefixState) for p in s.prefixes))

    def forward(self, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """Feed tokens [batch, time] and return logits [batch, time, vocab] with the new state."""
        if self.stateful:
            assert isinstance(state, RecurrentState)
            feed = {self._token_input(): tokens.astype(self._token_dtype, copy=False)}
            feed.update(zip(self._state_inputs, state.arrays, strict=True))
            logits, *new = self.session.run(self._fetch, feed)
            return logits, RecurrentState(tuple(new))
        assert isinstance(state, PrefixState)
        return self._forward_stateless(tokens, state)

    @property
    def token_dtype(self) -> type[np.generic]:
        """The numpy type of the model's token input."""
        return self._token_dtype

    def can_bind(self) -> bool:
        """Whether steps may be fed through I/O bindings (`stepping.BoundStepper`): a stateful model
        with float32 logits on the CPU."""
        return self.stateful and self._float32_logits and self.info.provider == "cpu"

    def _forward_stateless(self, tokens: np.ndarray, state: PrefixState) -> tuple[np.ndarray, State]:
        def run(batch: np.ndarray) -> np.ndarray:
            return np.asarray(self.session.run(self._fetch, {self._token_input(): batch.astype(self._token_dtype)})[0])

        return forward_prefixes(run, tokens, state, len(self.vocab), self._probs)


def forward_prefixes(
    run: Callable[[np.ndarray], np.ndarray], tokens: np.ndarray, state: PrefixState, vocab_size: int,
    outputs_probs: bool = False,
) -> tuple[np.ndarray, PrefixState]:
    """A stateless model's step: append `tokens` to each row's prefix and re-run the whole prefixes.

    `run` maps int64 tokens [rows, time] to logits (or probabilities) [rows, time, vocab] or
    [rows, vocab]; returns logits float32 [rows, steps, vocab] for the new positions.
    """
    prefixes = [np.concatenate([p, t.astype(np.int64)]) for p, t in zip(state.prefixes, tokens, strict=True)]
    steps = tokens.shape[1]
    out = np.empty((len(prefixes), steps, vocab_size), dtype=np.float32)
    # Rows of equal length run together; the model has no mask, so padding would change them.
    by_len: dict[int, list[int]] = {}
    for row, p in enumerate(prefixes):
        by_len.setdefault(len(p), []).append(row)
    for _length, rows in by_len.items():
        res = np.asarray(run(np.stack([prefixes[r] for r in rows])), dtype=np.float32)
        if res.ndim == 2:  # a model returning only the last position
            res = res[:, None, :]
        tail = res[:, -steps:, :] if res.shape[1] >= steps else np.repeat(res[:, -1:, :], steps, axis=1)
        if outputs_probs:
            tail = np.log(np.maximum(tail, 1e-30))
        out[rows] = tail[:, :, :vocab_size]
    return out, PrefixState(tuple(prefixes))


class PrefixEngine:
    """The `Engine` interface over any function of whole prefixes (a Keras model in training, say)."""

    def __init__(self, vocab: Vocabulary, info: ModelInfo, run: Callable[[np.ndarray], np.ndarray],
                 outputs_probs: bool = False) -> None:
        self.vocab, self.info, self._run, self._probs = vocab, info, run, outputs_probs

    def start(self, batch_size: int) -> State:
        """Empty prefixes."""
        return PrefixState(tuple(np.zeros(0, dtype=np.int64) for _ in range(batch_size)))

    def concat(self, states: Sequence[State]) -> State:
        """Stack the rows of several prefix states."""
        return PrefixState(tuple(p for s in states if isinstance(s, PrefixState) for p in s.prefixes))

    def forward(self, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """Re-feed each row's prefix plus `tokens`."""
        assert isinstance(state, PrefixState)
        return forward_prefixes(self._run, tokens, state, len(self.vocab), self._probs)


def _looks_like_probs(out: np.ndarray) -> bool:
    """Whether a stateless model's output rows are probability distributions (the lecture's softmax)."""
    rows = np.asarray(out, dtype=np.float64).reshape(-1, out.shape[-1])
    return bool(np.all(rows >= 0) and np.allclose(rows.sum(-1), 1.0, atol=1e-3))


def _numpy_dtype(onnx_type: str) -> type[np.generic]:
    table: dict[str, type[np.generic]] = {
        "tensor(int32)": np.int32,
        "tensor(int64)": np.int64,
        "tensor(float)": np.float32,
        "tensor(double)": np.float64,
    }
    return table.get(onnx_type, np.int32)
