"""Issue 23 §1: every file the tool reads goes through one bounded reader, and a model never chooses what is read.

Each class is tried on every entry point that reads a file: the config (`RECIPE_REPL_CONFIG`), a
model (`--model`), a vocabulary (`--vocab`), texts to score (`score FILE`), a corpus (`data show
text:`, `eval --data`), `:cells find`'s texts. Real child processes (a FIFO must not hang the test
runner), each answering in one line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile import REPO, child, edited

# Every entry point that reads a file the user names, with that file's place in its arguments.
# (name, args with {f}, stdin): the reader must refuse {f} when it is not a regular file, too big or not UTF-8.
READERS = [
    ("config", [], b"recipe\n"),
    ("model", ["generate", "recipe", "--model", "{f}"], b""),
    ("vocab", ["generate", "recipe", "--vocab", "{f}"], b""),
    ("score", ["score", "{f}"], b""),
    ("data show", ["data", "show", "text:{f}"], b""),
    ("eval --data", ["eval", "{model}", "--data", "text:{f}", "--no-ngram"], b""),
    (":cells find", [], b"recipe for roast\n:cells find paren {f}\n"),
]


def cli(args: list[str], stdin: bytes = b"", env: dict[str, str] | None = None,
        timeout: float = 30, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    full = {**os.environ, "PYTHONPATH": str(REPO), "RECIPE_REPL_NO_PLUGINS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "recipe_repl", *args], input=stdin, capture_output=True, env=full,
                          timeout=timeout, cwd=cwd)


def invoke(reader: str, path: Path, model: Path, stdin_extra: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """The entry point `reader` reading `path` (the model `model` where it needs one)."""
    _, args, stdin = next(r for r in READERS if r[0] == reader)
    env = {}
    if reader == "config":
        env["RECIPE_REPL_CONFIG"] = str(path)
        args = ["--model", str(model)]
    args = [a.format(f=path, model=model) for a in args]
    if reader not in ("model", "config", "data show", "eval --data") and "--model" not in args:
        args = [*args, "--model", str(model)]
    return cli(args, stdin.replace(b"{f}", str(path).encode()), env)


def one_error(r: subprocess.CompletedProcess[bytes]) -> str:
    err = r.stderr.decode()
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1, err
    return errors[0]


@pytest.mark.parametrize("reader", [r[0] for r in READERS])
@pytest.mark.parametrize("what", ["fifo", "/dev/zero", "folder"])
def test_what_is_not_a_regular_file_is_refused_at_once(reader: str, what: str, tmp_path: Path,
                                                        random_model: Path) -> None:
    if what == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)  # nobody writes: opening it to read would wait forever
    elif what == "folder":
        path = tmp_path / "folder"
        path.mkdir()
    else:
        path = Path(what)
    r = invoke(reader, path, random_model)
    line = one_error(r)
    assert r.returncode in (1, 2)
    assert str(path) in line and ("not a regular file" in line or "folder" in line), line


LIMITS = {"config": 1 << 20, "model": 2 << 30, "vocab": 64 << 20, "score": 1 << 30, "data show": 2 << 30,
          "eval --data": 2 << 30, ":cells find": 5_000_000}


@pytest.mark.parametrize("reader", [r[0] for r in READERS])
def test_a_file_over_its_kinds_limit_is_refused_before_it_is_read(reader: str, tmp_path: Path,
                                                                  random_model: Path) -> None:
    path = tmp_path / "huge"
    with open(path, "wb") as f:
        f.truncate(LIMITS[reader] + 1)  # sparse: the size is real, the disk is not used
    status, peak, out, err = child(_args(reader, path, random_model), _stdin(reader, path),
                                   env={"RECIPE_REPL_CONFIG": str(path)} if reader == "config" else None)
    assert "Traceback" not in err and status in (1, 2), err
    assert "over the" in err and "limit" in err, err
    assert peak < 500, f"{reader}: {peak:.0f} MiB"


def _args(reader: str, path: Path, model: Path) -> list[str]:
    _, args, _ = next(r for r in READERS if r[0] == reader)
    args = [a.format(f=path, model=model) for a in args]
    if reader == "config":
        return ["--model", str(model)]
    if reader not in ("model", "data show", "eval --data") and "--model" not in args:
        args.append("--model")
        args.append(str(model))
    return args


def _stdin(reader: str, path: Path) -> bytes:
    _, _, stdin = next(r for r in READERS if r[0] == reader)
    return stdin.replace(b"{f}", str(path).encode())


@pytest.mark.parametrize("reader", ["config", "vocab", "score", "data show", ":cells find"])
def test_bytes_that_are_not_utf8_are_one_line_naming_the_file_and_line(reader: str, tmp_path: Path,
                                                                       random_model: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"# fine\nrecipe for cr\xe8me\n")
    line = one_error(invoke(reader, path, random_model))
    assert str(path) in line and "not UTF-8" in line and "line 2" in line, line


def test_a_corpus_of_a_million_lines_or_more_is_refused_streaming_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"  # 200 MB, one word a line: 40 million "recipes"
    with open(path, "wb") as f:
        chunk = b"salt\n" * 1_000_000
        for _ in range(40):
            f.write(chunk)
    status, peak, out, err = child(["data", "show", f"text:{path}", "-n", "1"])
    assert status == 2 and "Traceback" not in err, err
    assert "more than 1,000,000 lines" in err
    assert peak < 500, f"{peak:.0f} MiB"


def test_a_large_legitimate_corpus_is_read_once_not_held_twice(tmp_path: Path) -> None:
    """A 120 MB text corpus (60,000 recipes of 2 KB) costs about its own size in memory, not 2-3 times it."""
    small, big = tmp_path / "small.txt", tmp_path / "big.txt"
    recipe = ("recipe for roast chicken | " + "mix the salt and pepper, then bake until golden. " * 40)[:2000] + "\n"
    small.write_text(recipe * 10)
    with open(big, "w") as f:
        for _ in range(60):
            f.write(recipe * 1000)
    size_mib = big.stat().st_size / (1 << 20)
    status, base, _, err = child(["data", "show", f"text:{small}", "-n", "1"])
    assert status == 0, err
    status, peak, out, err = child(["data", "show", f"text:{big}", "-n", "1"])
    assert status == 0, err
    assert out.decode().startswith("recipe for roast chicken |")
    assert peak - base < 1.5 * size_mib, f"{peak - base:.0f} MiB over the baseline for a {size_mib:.0f} MiB corpus"


# --- deeply nested JSON ---------------------------------------------------------------------------------------


NESTED = "[" * 200_000 + "]" * 200_000


@pytest.fixture(scope="module")
def nested_models(tmp_path_factory: pytest.TempPathFactory, random_model: Path) -> dict[str, Path]:
    from recipe_repl.model import contract

    folder = tmp_path_factory.mktemp("nested")
    return {key: edited(random_model, folder / f"{key.rsplit('.', 1)[-1]}.onnx", meta={key: NESTED})
            for key in (contract.META_VOCAB, contract.META_CONFIG, contract.META_TRAINING)}


@pytest.mark.parametrize("key", ["vocabulary", "config", "training"])
@pytest.mark.parametrize("how", ["generate", "score", "eval", ":model", ":compare-models"])
def test_deeply_nested_metadata_is_one_line_everywhere(nested_models: dict[str, Path], random_model: Path,
                                                       tmp_path: Path, key: str, how: str) -> None:
    model = next(p for k, p in nested_models.items() if k.endswith(key))
    texts = tmp_path / "t.txt"
    texts.write_text("recipe for roast\n")
    runs = {
        "generate": (["generate", "recipe", "--model", str(model)], b""),
        "score": (["score", str(texts), "--model", str(model)], b""),
        "eval": (["eval", str(model), "--data", f"text:{texts}", "--no-ngram"], b""),
        ":model": (["--model", str(random_model)], f":model {model}\n".encode()),
        ":compare-models": (["--model", str(random_model)], f"recipe for\n:compare-models {model}\n".encode()),
    }
    args, stdin = runs[how]
    r = cli(args, stdin)
    line = one_error(r)
    assert "nested too deeply" in line and "RecursionError" not in line and "failed (builtin" not in line, line
    assert str(model) in line


def test_a_nested_vocab_file_and_config_are_one_line(tmp_path: Path, random_model: Path) -> None:
    vocab = tmp_path / "vocab.json"
    vocab.write_text(NESTED)
    line = one_error(cli(["generate", "recipe", "--model", str(random_model), "--vocab", str(vocab)]))
    assert "nested too deeply" in line and str(vocab) in line
    config = tmp_path / "config.toml"
    config.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    line = one_error(cli(["--model", str(random_model)], b"recipe\n", {"RECIPE_REPL_CONFIG": str(config)}))
    assert "nested too deeply" in line and str(config) in line


def test_a_vocab_json_of_the_wrong_type_is_one_line(tmp_path: Path, random_model: Path) -> None:
    vocab = tmp_path / "vocab.json"
    for content in ('{"words": 1}', json.dumps(["", "[UNK]", 3, "x"])):
        vocab.write_text(content)
        line = one_error(cli(["generate", "recipe", "--model", str(random_model), "--vocab", str(vocab)]))
        assert "JSON list of words" in line and str(vocab) in line


# --- a model never chooses what the tool reads ----------------------------------------------------------------


def test_eval_never_reads_a_corpus_the_model_names(random_model: Path, tmp_path: Path) -> None:
    from recipe_repl.model import contract

    private = tmp_path / "private.txt"
    private.write_text("".join(f"recipe for my secret {i} | mix salt .\n" for i in range(30)))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for recorded in (f"text:{private}", str(private), "/dev/zero", f"text:{fifo}", f"builtin+text:{private}"):
        model = edited(random_model, tmp_path / "m.onnx", meta={
            contract.META_TRAINING: json.dumps({"data": recorded, "seed": 1, "val_split": 0.5})})
        r = cli(["eval", str(model), "--no-ngram"], timeout=60)
        line = one_error(r)
        assert r.returncode == 2 and f"was trained on {recorded}: pass --data to evaluate on it" in line, line
        assert b"held-out" not in r.stdout and b"secret" not in r.stdout + r.stderr.replace(str(tmp_path).encode(), b"")
    r = cli(["eval", str(model), "--no-ngram", "--data", f"text:{private}", "--limit", "2"])  # named: read
    assert r.returncode == 0 and b"held-out recipes of text:private.txt" in r.stdout, r.stderr


def test_eval_follows_a_recorded_built_in_corpus(random_model: Path, tmp_path: Path) -> None:
    from recipe_repl.model import contract

    model = edited(random_model, tmp_path / "m.onnx", meta={
        contract.META_TRAINING: json.dumps({"data": "wikibooks", "seed": 1, "val_split": 0.1})})
    r = cli(["eval", str(model), "--no-ngram", "--limit", "2"])
    assert r.returncode == 0, r.stderr
    assert b"held-out recipes of wikibooks" in r.stdout


def test_a_model_naming_external_data_cannot_make_the_tool_read_it(random_model: Path, tmp_path: Path) -> None:
    """ONNX tensors may live in external files named by the model: handed to ONNX Runtime as bytes, it reads none."""
    import onnx
    from onnx.external_data_helper import convert_model_to_external_data

    model = onnx.load(str(random_model))
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="weights.bin", size_threshold=1024)
    onnx.save_model(model, str(tmp_path / "external.onnx"))
    assert (tmp_path / "weights.bin").is_file()
    for cwd in (REPO, tmp_path):  # beside the model, and in the working folder: neither is read
        line = one_error(cli(["generate", "recipe", "--model", str(tmp_path / "external.onnx")], cwd=cwd))
        assert str(tmp_path / "external.onnx") in line and "cannot load model" in line


def test_the_streamed_lines_are_those_of_the_whole_text(tmp_path: Path) -> None:
    """The streamed lines are what `str.splitlines` gives on the whole text (\\r\\n, \\r, U+2028 …)."""
    from recipe_repl.base import reading

    text = "a\r\nb\rc\u2028d\x85e\n\nf"
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8", newline="")
    assert list(reading.lines(path, reading.SCORE_TEXTS)) == text.splitlines()
