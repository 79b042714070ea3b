"""Parity of the exported ONNX file with the Keras model, measured with plain onnxruntime.

Three checks: logits on held-out recipes (max |Δ|), a prompt fed at once vs one token at a time
(stateful step graph), and 100 greedy tokens from Keras (re-feeding the prefix) vs ONNX (carrying
the state) — which must be identical.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from recipe_repl.model import contract

TOLERANCE = 1e-4
GREEDY_TOKENS = 100  # greedy tokens compared, Keras (re-feeding the prefix) vs ONNX (carrying the state)


@dataclass
class Parity:
    max_abs_logit_diff: float  # Keras vs ONNX on held-out recipes
    incremental_max_abs_diff: float  # prompt at once vs token by token, ONNX
    greedy_tokens: int  # how many greedy tokens were compared
    greedy_identical: bool  # Keras and ONNX chose the same tokens
    greedy_first_mismatch: int  # index of the first differing token, -1 if none
    held_out_recipes: int
    held_out_tokens: int
    tolerance: float

    @property
    def ok(self) -> bool:
        return (self.max_abs_logit_diff <= self.tolerance and self.incremental_max_abs_diff <= self.tolerance
                and self.greedy_identical)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}

    def summary(self) -> str:
        return (f"parity: max|Δlogits| {self.max_abs_logit_diff:.2e} on {self.held_out_tokens} held-out tokens, "
                f"incremental max|Δ| {self.incremental_max_abs_diff:.2e}, {self.greedy_tokens} greedy tokens "
                f"{'identical' if self.greedy_identical else f'differ at {self.greedy_first_mismatch}'} "
                f"(tolerance {self.tolerance:g})")


def session(model_bytes: bytes) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def _zeros(sess: Any, batch: int) -> dict[str, np.ndarray]:
    feeds = {}
    for inp in sess.get_inputs():
        if inp.name != contract.TOKENS_INPUT:
            feeds[inp.name] = np.zeros((batch, inp.shape[1]), np.float32)
    return feeds


def onnx_logits(sess: Any, tokens: np.ndarray, state: dict[str, np.ndarray] | None = None
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run the step graph: returns logits and the new state keyed by state *input* names."""
    feeds = dict(state) if state is not None else _zeros(sess, tokens.shape[0])
    feeds[contract.TOKENS_INPUT] = tokens.astype(np.int32)
    names = [o.name for o in sess.get_outputs()]
    outs = dict(zip(names, sess.run(None, feeds), strict=True))
    new_state = {k: outs[contract.state_output_name(k)] for k in feeds if k != contract.TOKENS_INPUT}
    return outs[contract.LOGITS_OUTPUT], new_state


def pad_batch(seqs: list[list[int]]) -> np.ndarray:
    out = np.zeros((len(seqs), max(len(s) for s in seqs)), np.int32)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


def check(keras_model: Any, model_bytes: bytes, held_out: list[list[int]], prompt: list[int],
          greedy_tokens: int = GREEDY_TOKENS, tolerance: float = TOLERANCE) -> Parity:
    """Measure parity; `held_out` are token-id sequences, `prompt` the ids of e.g. "recipe for"."""
    from recipe_repl.train.model import compiled_forward

    forward = compiled_forward(keras_model)
    sess = session(model_bytes)
    # 1. held-out logits, a batch at a time. Only the recipes' own positions count: the padding
    # after a shorter recipe is not text, and a model trained with a masked loss never learned
    # anything there (its logits grow large, and so do float32 rounding differences).
    max_diff = 0.0
    n_tokens = 0
    for i in range(0, len(held_out), 16):
        chunk = held_out[i : i + 16]
        x = pad_batch(chunk)
        ref = forward(x)
        got, _ = onnx_logits(sess, x)
        real = np.arange(x.shape[1])[None, :] < np.array([len(s) for s in chunk])[:, None]
        max_diff = max(max_diff, float(np.abs(ref - got)[real].max()))
        n_tokens += int(real.sum())
    # 2. at once vs token by token
    seq = np.array([prompt + (held_out[0][:20] if held_out else [])], np.int32)
    at_once, _ = onnx_logits(sess, seq)
    state = None
    steps = []
    for t in range(seq.shape[1]):
        lg, state = onnx_logits(sess, seq[:, t : t + 1], state)
        steps.append(lg)
    inc_diff = float(np.abs(at_once - np.concatenate(steps, axis=1)).max())
    # 3. greedy: Keras re-feeds the prefix, ONNX carries the state
    k_ids = list(prompt)
    for _ in range(greedy_tokens):
        lg = forward(np.array([k_ids], np.int32))[0, -1]
        k_ids.append(int(np.argmax(lg)))
    o_ids = list(prompt)
    lg, state = onnx_logits(sess, np.array([prompt], np.int32))
    for _ in range(greedy_tokens):
        nxt = int(np.argmax(lg[0, -1]))
        o_ids.append(nxt)
        lg, state = onnx_logits(sess, np.array([[nxt]], np.int32), state)
    k_gen, o_gen = k_ids[len(prompt):], o_ids[len(prompt):]
    mismatch = next((i for i, (a, b) in enumerate(zip(k_gen, o_gen, strict=True)) if a != b), -1)
    return Parity(max_diff, inc_diff, greedy_tokens, mismatch == -1, mismatch, len(held_out), n_tokens, tolerance)


def top1_agreement(ref_bytes: bytes, other_bytes: bytes, held_out: list[list[int]]) -> dict[str, Any]:
    """Share of held-out positions where two ONNX models agree on the most likely next token."""
    a, b = session(ref_bytes), session(other_bytes)
    agree = total = 0
    max_diff = 0.0
    for i in range(0, len(held_out), 16):
        chunk = held_out[i : i + 16]
        x = pad_batch(chunk)
        la, _ = onnx_logits(a, x)
        lb, _ = onnx_logits(b, x)
        real = np.zeros(x.shape, bool)
        for r, s in enumerate(chunk):
            real[r, : len(s)] = True
        agree += int((la.argmax(-1) == lb.argmax(-1))[real].sum())
        total += int(real.sum())
        max_diff = max(max_diff, float(np.abs(la - lb)[real].max()))
    return {"top1_agreement": agree / max(total, 1), "positions": total, "max_abs_logit_diff": max_diff}
