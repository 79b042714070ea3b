"""A sample as plain data: what `--json` writes and `:save` keeps, every probability saying which
distribution it is from."""

from __future__ import annotations

import math
from typing import Any

from recipe_repl.generate.loop import Sample


def sample_record(sample: Sample, with_text: bool = True) -> dict[str, Any]:
    """A sample as plain data (`--json`, `:save`), with every setting it was generated under.

    Every probability says which distribution it is from: `token_probs` (and `logprob_sum`,
    `perplexity`) the one each word was drawn from, after the settings; `model_probs` (and
    `model_logprob_sum`, `model_perplexity`) the model's own, at temperature 1 with no processors —
    null when they were not computed (plain-text batch output does not need them).
    """
    model = sample.model_token_probs
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
        "token_probs": [_p(p) for p in sample.token_probs],
        "logprob_sum": _finite(sample.logprob_sum),
        "perplexity": _finite(sample.perplexity),
        "model_probs": None if model is None else [_p(p) for p in model],
        "model_logprob_sum": _finite(sample.model_logprob_sum),
        "model_perplexity": _finite(sample.model_perplexity),
        **({"top_alternatives": [[{"word": w, "id": i, "prob": _p(p), "model_prob": _p(m)} for i, w, p, m in step]
                                 for step in sample.alternatives]} if sample.alternatives else {}),
        **({"stop_detail": sample.stop_detail} if sample.stop_detail else {}),
    }


def _p(p: float) -> float:
    """A probability to six significant digits (a tiny one keeps its digits: 3.2e-07, not 0.0)."""
    return float(f"{p:.6g}")


def _finite(x: float | None) -> float | None:
    """JSON has no infinity: an impossible choice (probability 0) is recorded as null."""
    return None if x is None or not math.isfinite(x) else float(f"{x:.8g}")
