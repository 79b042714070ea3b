"""Issue 14 §2: a model is checked against the ONNX contract when it loads, in one place (`OnnxEngine`), and a
foreign or broken file is one clear line everywhere: `--model`, `:model` (the old model stays and the batch
goes on), `eval`, and the stateless files `export --stateless` writes keep loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from recipe_repl.export.random_model import build_random_lstm

from recipe_repl.base.errors import ModelError
from recipe_repl.model import contract
from recipe_repl.model.engine import OnnxEngine
from tests.conftest import WORDS
from tests.hostile import edited, identity_model, one_wide_model, raw_controls, run
from tests.tiny import EPICURIOUS_SAMPLE

# name → (how to build it from the good random model, what the one line must say)
FOREIGN = {
    "identity": (lambda good, p: identity_model(p, WORDS), "logits"),
    "identity-float": (lambda good, p: identity_model(p, WORDS, "float"), "token input"),
    "short-vocabulary": (lambda good, p: edited(good, p, meta={contract.META_VOCAB: json.dumps(WORDS[:-3])}),
                         f"{len(WORDS)} wide but the vocabulary has {len(WORDS) - 3} words"),
    "one-wide": (lambda good, p: one_wide_model(p, WORDS), f"1 wide but the vocabulary has {len(WORDS)} words"),
    "other-names": (lambda good, p: edited(good, p, rename={"h0": "state_h", "c0": "state_c", "h": "hn", "c": "cn"}),
                    "state input"),
    "duplicate-words": (lambda good, p: edited(good, p, meta={contract.META_VOCAB: json.dumps(
        [*WORDS[:-1], WORDS[5]])}), "repeats"),
    "vocabulary-not-a-list": (lambda good, p: edited(good, p, meta={contract.META_VOCAB: '{"a": 1}'}),
                              "vocabulary"),
    "nan-weights": (lambda good, p: edited(good, p, nan_weights=True), "non-finite"),
    "fixed-batch": (lambda good, p: edited(good, p, fixed_batch=True), "batch"),
    "config-not-an-object": (lambda good, p: edited(good, p, meta={contract.META_CONFIG: "[1, 2]"}),
                             contract.META_CONFIG),
}


@pytest.fixture(scope="module")
def foreign(random_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("foreign")
    return {name: build(random_model, folder / f"{name}.onnx") for name, (build, _) in FOREIGN.items()}


def one_error_line(err: bytes) -> str:
    text = err.decode()
    assert "Traceback" not in text and not raw_controls(text)
    lines = [line for line in text.splitlines() if line.startswith(("error", "line "))]
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize("name", FOREIGN)
def test_engine_rejects_a_foreign_model_at_load(foreign: dict[str, Path], name: str) -> None:
    with pytest.raises(ModelError) as info:
        OnnxEngine(foreign[name], provider="cpu")
    message = str(info.value)
    assert FOREIGN[name][1] in message, message
    assert str(foreign[name]) in message and "\n" not in message


@pytest.mark.parametrize("name", FOREIGN)
def test_generate_with_a_foreign_model_is_one_line(foreign: dict[str, Path], name: str) -> None:
    code, out, err = run(["generate", "recipe for", "--model", str(foreign[name])])
    assert code == 2 and out == b""
    line = one_error_line(err)
    assert line.startswith("error: model ") and FOREIGN[name][1] in line


@pytest.mark.parametrize("name", FOREIGN)
def test_switching_to_a_foreign_model_keeps_the_old_one_and_the_batch_goes_on(
        random_model: Path, foreign: dict[str, Path], name: str) -> None:
    script = f"recipe\n:model {foreign[name]}\nrecipe for\n:model\n".encode()
    code, out, err = run(["--model", str(random_model), "--seed", "1", "--max-tokens", "4"], script)
    assert code == 1
    assert len(out.decode().splitlines()) == 2  # the line after the bad :model still ran, on the old model
    text = err.decode()
    assert f"line 2: error: model {foreign[name]}" in text and FOREIGN[name][1] in text
    assert f"model {random_model} (stateful" in text  # `:model` names the model still in use
    assert "Traceback" not in text


@pytest.mark.parametrize("name", FOREIGN)
def test_eval_on_a_foreign_model_is_one_line(foreign: dict[str, Path], name: str) -> None:
    code, out, err = run(["eval", str(foreign[name]), "--data", f"epicurious:{EPICURIOUS_SAMPLE}", "--no-ngram",
                          "--limit", "2"])
    assert code == 2 and out == b""
    line = one_error_line(err)
    assert line.startswith("error: model ") and FOREIGN[name][1] in line


def test_other_names_for_tokens_and_logits_still_load_when_unambiguous(random_model: Path, tmp_path: Path) -> None:
    renamed = edited(random_model, tmp_path / "renamed.onnx", rename={"tokens": "input_ids", "logits": "scores"},
                     outputs_last=True)
    engine = OnnxEngine(renamed, provider="cpu")
    assert engine.info.kind == "stateful"
    args = ["--seed", "1", "--max-tokens", "6"]
    code, out, err = run(["generate", "recipe for", "--model", str(renamed), *args])
    assert code == 0, err
    assert out == run(["generate", "recipe for", "--model", str(random_model), *args])[1]
    evaluated = [run(["eval", str(m), "--data", f"epicurious:{EPICURIOUS_SAMPLE}", "--no-ngram", "--limit", "2"])
                 for m in (renamed, random_model)]
    assert evaluated[0][0] == 0, evaluated[0][2]
    assert evaluated[0][1].split(b"\n")[1:] == evaluated[1][1].split(b"\n")[1:]  # same figures, other path


def test_a_lecture_style_stateless_model_still_loads_and_generates(tmp_path: Path) -> None:
    stateless = build_random_lstm(tmp_path / "probs.onnx", WORDS, stateless=True, scale=1.5)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(WORDS) + "\n")
    engine = OnnxEngine(stateless, provider="cpu", vocab_path=vocab)
    assert engine.info.kind == "stateless" and engine._probs
    code, out, err = run(["generate", "recipe for", "--model", str(stateless), "--vocab", str(vocab), "--seed", "1",
                          "--max-tokens", "5"])
    assert code == 0, err
    assert out.decode().startswith("Recipe for")


def test_a_stateless_model_with_a_wrong_vocabulary_is_refused(tmp_path: Path) -> None:
    stateless = build_random_lstm(tmp_path / "probs.onnx", WORDS, stateless=True)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(WORDS[:-2]) + "\n")
    with pytest.raises(ModelError, match=f"{len(WORDS)} wide but the vocabulary has {len(WORDS) - 2} words"):
        OnnxEngine(stateless, provider="cpu", vocab_path=vocab)


@pytest.mark.slow
def test_exported_stateless_file_loads_generates_and_evaluates(tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.tiny import cached_tiny_stateless_onnx

    path = cached_tiny_stateless_onnx(tmp_path_factory)
    engine = OnnxEngine(path, provider="cpu")
    assert engine.info.kind == "stateless"
    code, out, err = run(["generate", "recipe for", "--model", str(path), "--seed", "1", "--max-tokens", "5"])
    assert code == 0, err
    code, out, err = run(["eval", str(path), "--no-ngram", "--limit", "2", "--data", f"epicurious:{EPICURIOUS_SAMPLE}"])
    assert code == 0, err
    assert b"LSTM (ONNX)" in out
