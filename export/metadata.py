"""The ONNX `metadata_props` that make a model file self-describing (keys from recipe_repl.model.contract)."""

from __future__ import annotations

import json
from typing import Any

from recipe_repl.model import contract


def build_metadata(words: list[str], lowercase: str, model_config: dict[str, Any], training: dict[str, Any],
                   parity: dict[str, Any], output_kind: str = "logits",
                   sample_texts: dict[str, Any] | None = None, ngram: str | None = None) -> dict[str, str]:
    """All metadata values as strings (JSON where structured); `sample_texts` is {"source", "texts"},
    `ngram` the 3-gram counts' value (`recipe_repl.model.ngram.encode`)."""
    extra = {contract.META_SAMPLE_TEXTS: json.dumps(sample_texts, ensure_ascii=False)} if sample_texts else {}
    if ngram:
        extra[contract.META_NGRAM] = ngram
    return extra | {
        contract.META_FORMAT: contract.FORMAT_VERSION,
        contract.META_VOCAB: json.dumps(words, ensure_ascii=False),
        contract.META_LOWERCASE: lowercase,
        contract.META_CONFIG: json.dumps(model_config, sort_keys=True),
        contract.META_TRAINING: json.dumps(training, sort_keys=True, ensure_ascii=False),
        contract.META_PARITY: json.dumps(parity, sort_keys=True),
        contract.META_OUTPUT_KIND: output_kind,
    }


def apply_metadata(model: Any, meta: dict[str, str]) -> None:
    """Replace the model's metadata_props with `meta` (other keys are kept)."""
    existing = {p.key: p.value for p in model.metadata_props}
    existing.update(meta)
    del model.metadata_props[:]
    for key, value in existing.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def read_metadata(model: Any) -> dict[str, str]:
    """The metadata_props as a dict."""
    return {p.key: p.value for p in model.metadata_props}
