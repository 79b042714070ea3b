"""The ONNX model-file contract shared by `export/` (which writes it) and the runtime (which reads it).

Inputs: `tokens` int32 [batch, time], then the recurrent state `h0`, `c0` float32 [batch, units]
(one pair per layer; layer k > 0 uses `h0_k`, `c0_k`). Outputs: `logits` float32 [batch, time, vocab],
then the new state `h`, `c` (`h_k`, `c_k`). State input `X0` pairs with output `X`, `X0_k` with `X_k`.
Everything else the runtime needs travels in the ONNX `metadata_props` under the keys below.
"""

from __future__ import annotations

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


def state_output_name(input_name: str) -> str:
    """The output that carries the new value of a state input: `h0` → `h`, `c0_1` → `c_1`."""
    head, sep, layer = input_name.partition("_")
    if not head.endswith("0"):
        raise ValueError(f"state input {input_name!r} does not end in 0")
    return head[:-1] + (sep + layer if sep else "")
