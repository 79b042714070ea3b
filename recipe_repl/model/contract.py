"""The ONNX model-file contract shared by `export/` (which writes it) and the runtime (which reads it).

Inputs: `tokens` int32 [batch, time], then the recurrent state `h0`, `c0` float32 [batch, units]
(one pair per layer; layer k > 0 uses `h0_k`, `c0_k`). Outputs: `logits` float32 [batch, time, vocab],
then the new state `h`, `c` (`h_k`, `c_k`). State input `X0` pairs with output `X`, `X0_k` with `X_k`.
Everything else the runtime needs travels in the ONNX `metadata_props` under the keys below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

FORMAT_VERSION = "1"

TOKENS_INPUT = "tokens"
LOGITS_OUTPUT = "logits"

META_FORMAT = "recipe_repl.format"  # FORMAT_VERSION
META_VOCAB = "recipe_repl.vocabulary"  # JSON list of words, TextVectorization order
META_LOWERCASE = "recipe_repl.lowercase"  # "ascii" (TextVectorization default) or "unicode"
META_CONFIG = "recipe_repl.config"  # JSON: model config (vocab_size, embedding_dim, units, seq_len, ...)
META_TRAINING = "recipe_repl.training"  # JSON: corpus name and size, epochs, final losses, dates
META_PARITY = "recipe_repl.parity"  # JSON: parity figures measured by the export
META_OUTPUT_KIND = "recipe_repl.output_kind"  # "logits" or "probs"
META_SAMPLE_TEXTS = "recipe_repl.sample_texts"  # JSON: {"source": …, "texts": [a few held-out recipes]}
META_NGRAM = "recipe_repl.ngram3"  # JSON: the training split's 3-gram counts (`recipe_repl.model.ngram`)


def state_output_name(input_name: str) -> str:
    """The output that carries the new value of a state input: `h0` → `h`, `c0_1` → `c_1`."""
    head, sep, layer = input_name.partition("_")
    if not head.endswith("0"):
        raise ValueError(f"state input {input_name!r} does not end in 0")
    return head[:-1] + (sep + layer if sep else "")


# --- checking a model's signature against the contract -------------------------------------------

INTEGER_TYPES = ("tensor(int32)", "tensor(int64)")
FLOAT_TYPES = ("tensor(float)", "tensor(double)", "tensor(float16)")
Dim = int | str | None  # ONNX Runtime gives a fixed size, a symbolic name, or nothing


@dataclass(frozen=True)
class TensorSpec:
    """One input or output as ONNX Runtime describes it: name, type ("tensor(int32)") and shape."""

    name: str
    type: str
    shape: tuple[Dim, ...]


@dataclass(frozen=True)
class Roles:
    """Which of a model's tensors play which part: found by `check_signature`."""

    tokens: str
    logits: str
    state_inputs: tuple[str, ...] = ()
    state_outputs: tuple[str, ...] = ()
    state_shapes: tuple[tuple[int, ...], ...] = ()  # each state's size without the batch axis

    @property
    def stateful(self) -> bool:
        """Whether the model carries a recurrent state (else it re-reads the prefix)."""
        return bool(self.state_inputs)


def _show(t: TensorSpec) -> str:
    dims = ", ".join("?" if d is None else str(d) for d in t.shape)
    return f"{t.name!r} {t.type.removeprefix('tensor(').removesuffix(')')}[{dims}]"


def check_signature(inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], vocab_size: int) -> Roles:
    """Find the token input, the logits and the state pairs, or raise ValueError naming what does not match.

    The token input is `tokens` (or the one integer input), [batch, time] with free sizes. Every other
    input is a float32 state `X0`/`X0_k` with fixed sizes after the batch axis, paired with an output `X`/`X_k`
    of the same sizes. The logits are `logits` (or the one output left), floating point, [batch, time, vocab]
    (a stateless model may give only the last position, [batch, vocab]), vocab equal to the vocabulary's size.
    """
    if not inputs or not outputs:
        raise ValueError("it has no inputs or no outputs")
    by_name = {t.name: t for t in inputs}
    integer = [t for t in inputs if t.type in INTEGER_TYPES]
    if TOKENS_INPUT in by_name:
        tokens = by_name[TOKENS_INPUT]
    elif len(integer) == 1:
        tokens = integer[0]
    else:
        raise ValueError(f"no token input: the contract wants {TOKENS_INPUT!r} int32[batch, time] "
                         f"(inputs: {', '.join(_show(t) for t in inputs)})")
    if tokens.type not in INTEGER_TYPES:
        raise ValueError(f"the token input {_show(tokens)} is not integer: the contract wants int32[batch, time]")
    if len(tokens.shape) != 2:
        raise ValueError(f"the token input {_show(tokens)} is not [batch, time]")
    if any(isinstance(d, int) for d in tokens.shape):
        raise ValueError(f"the token input {_show(tokens)} has a fixed batch or time size: both must be free")
    states = [t for t in inputs if t is not tokens]
    out_by_name = {t.name: t for t in outputs}
    state_outputs, shapes = [], []
    for s in states:
        try:
            out_name = state_output_name(s.name)
        except ValueError:
            raise ValueError(f"state input {_show(s)} is not named X0 or X0_k (paired with output X or X_k)") from None
        dims = s.shape[1:]
        if s.type != "tensor(float)" or len(s.shape) != 2 or not all(isinstance(d, int) for d in dims):
            raise ValueError(f"state input {_show(s)} is not float32[batch, units] with a fixed number of units")
        out = out_by_name.get(out_name)
        if out is None:
            raise ValueError(f"state input {s.name!r} has no output {out_name!r} to carry its new value")
        if out.type != s.type or len(out.shape) != len(s.shape) or any(
                isinstance(o, int) and o != d for o, d in zip(out.shape[1:], dims, strict=True)):
            raise ValueError(f"state output {_show(out)} does not match its input {_show(s)}")
        state_outputs.append(out_name)
        shapes.append(tuple(int(d) for d in dims if isinstance(d, int)))
    rest = [t for t in outputs if t.name not in state_outputs]
    if LOGITS_OUTPUT in out_by_name and LOGITS_OUTPUT not in state_outputs:
        logits = out_by_name[LOGITS_OUTPUT]
    elif len(rest) == 1 or (rest and not states):
        logits = rest[0]
    else:
        raise ValueError(f"no logits output: the contract wants {LOGITS_OUTPUT!r} float32[batch, time, vocab] "
                         f"(outputs: {', '.join(_show(t) for t in outputs)})")
    ranks = (3,) if states else (2, 3)
    if logits.type not in FLOAT_TYPES or len(logits.shape) not in ranks:
        raise ValueError(f"the logits {_show(logits)} are not floating point [batch, time, vocab]")
    width = logits.shape[-1]
    if isinstance(width, int) and width != vocab_size:
        raise ValueError(f"the logits are {width} wide but the vocabulary has {vocab_size} words")
    return Roles(tokens.name, logits.name, tuple(s.name for s in states), tuple(state_outputs), tuple(shapes))
