"""The command line: `generate`, batch mode over stdin, errors, and what gets imported.

Most tests run the real entry point in-process under click's `CliRunner` isolation (stdin, stdout
and stderr swapped); the few that need a process of their own — what a fresh interpreter imports, a
closed pipe, output streaming while stdin is still open — start one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, cli


def test_generate_prints_text_on_stdout_and_status_on_stderr(random_model: Path) -> None:
    r = cli(["generate", "recipe for roast", "--model", str(random_model), "--seed", "3", "--max-tokens", "12"])
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode().strip()
    assert out.startswith("Recipe for roast")
    assert "tokens ·" in r.stderr.decode() and "tokens ·" not in out  # the status line goes to stderr only
    assert len(out.splitlines()) == 1


def test_generate_json(random_model: Path) -> None:
    r = cli(["generate", "recipe for roast", "--model", str(random_model), "--seed", "3", "--json", "-t", "0.5",
             "--top-k", "5", "--max-tokens", "7"])
    data = json.loads(r.stdout)
    assert data["prompt"] == "recipe for roast"
    assert data["text"].startswith("Recipe for roast")
    assert data["stop_reason"] in ("stop token", "max tokens")
    assert len(data["tokens"]) <= 7 and data["temperature"] == 0.5 and data["top_k"] == 5 and data["seed"] == 3


def test_same_seed_same_text(random_model: Path) -> None:
    args = ["generate", "mix salt", "--model", str(random_model), "--seed", "8"]
    assert cli(args).stdout == cli(args).stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "x", "--model", "/no/such.onnx"], "model file not found"),
        (["generate", "x", "--model", "{bad}"], "cannot load model"),
        (["generate", "x", "--temperature", "9", "--model", "{model}"], "temperature must be between 0 and 5"),
        (["generate", "x", "--provider", "cuda", "--model", "{model}"], "CUDA"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(random_model: Path, tmp_path: Path, args, message) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not onnx")
    args = [a.replace("{bad}", str(bad)).replace("{model}", str(random_model)) for a in args]
    r = cli(args)
    err = r.stderr.decode()
    if message == "CUDA" and r.returncode == 0:
        pytest.skip("this machine's onnxruntime really offers CUDA")
    assert r.returncode == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_batch_transcript_applies_commands_to_later_prompts(random_model: Path) -> None:
    script = "# a comment\nrecipe for roast\n:temp 0\n:max 5\nmix salt\nmix salt\n"
    r = cli(["--model", str(random_model), "--seed", "1"], script)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("Recipe for roast")
    assert lines[1] == lines[2]  # greedy: identical
    assert len(lines[1].split()) <= 2 + 5 + 5  # prompt + at most 5 tokens (punctuation may glue)


def test_batch_json_lines_and_n(random_model: Path) -> None:
    r = cli(["--model", str(random_model), "--seed", "2", "--json", "--n", "3", "--max-tokens", "4"],
            "recipe for roast\nmix\n")
    rows = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert [(row["prompt"], row["sample"]) for row in rows] == [
        ("recipe for roast", 0), ("recipe for roast", 1), ("recipe for roast", 2), ("mix", 0), ("mix", 1), ("mix", 2)
    ]
    assert {"text", "tokens", "stop_reason", "temperature", "top_k", "top_p", "seed"} <= rows[0].keys()


def test_batch_bad_command_is_reported_with_its_line_and_generation_goes_on(random_model: Path) -> None:
    r = cli(["--model", str(random_model), "--seed", "1", "--max-tokens", "3"],
            "recipe\n:temp hot\n:frobnicate\nmix\n")
    err = r.stderr.decode()
    assert r.returncode == 1
    assert "line 2: error: temperature must be a number" in err
    assert "line 3: error: unknown command :frobnicate" in err
    assert len(r.stdout.decode().splitlines()) == 2
    assert "Traceback" not in err


def test_batch_replaces_undecodable_bytes(random_model: Path) -> None:
    r = cli(["--model", str(random_model), "--seed", "1", "--max-tokens", "3"], b"recipe \xff\xfe for\n")
    assert r.returncode == 0
    assert r.stdout.decode().startswith("Recipe [UNK] for")


@pytest.mark.parametrize("batch_size", ["1", "7", "32"])
def test_batch_output_does_not_depend_on_batch_size(random_model: Path, batch_size: str) -> None:
    prompts = "".join(f"{p}\n" for p in ["recipe for roast", "mix", "bake until golden brown", "salt"] * 5)
    base = cli(["--model", str(random_model), "--seed", "4", "--max-tokens", "15", "--batch-size", "32"], prompts)
    r = cli(["--model", str(random_model), "--seed", "4", "--max-tokens", "15", "--batch-size", batch_size], prompts)
    assert r.stdout == base.stdout and len(r.stdout.splitlines()) == 20


def test_closed_pipe_ends_quietly(random_model: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = f"yes 'recipe for roast' | head -2000 | {sys.executable} -m recipe_repl --model {random_model} | head -1"
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, env=env, timeout=120)
    assert r.stdout.decode().startswith("Recipe for roast")
    assert b"Traceback" not in r.stderr and b"Error" not in r.stderr


def test_batch_streams_output_batch_by_batch(random_model: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "recipe_repl", "--model", str(random_model), "--batch-size", "4",
                             "--max-tokens", "3"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"recipe\n" * 4)
    proc.stdin.flush()
    first = proc.stdout.readline()  # arrives while stdin is still open: the input is a stream
    assert first.startswith(b"Recipe")
    proc.stdin.close()
    proc.wait(timeout=60)
    assert proc.returncode == 0


def test_no_tensorflow_prompt_toolkit_or_rich_in_batch_mode(random_model: Path) -> None:
    probe = (
        "import sys, atexit\n"
        "atexit.register(lambda: sys.stderr.write('LOADED:' + ','.join(sorted(m for m in "
        "('tensorflow', 'keras', 'tf2onnx', 'prompt_toolkit', 'rich') if m in sys.modules)) + '\\n'))\n"
        "from recipe_repl.frontends.cli import main\nmain()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", probe, "--model", str(random_model), "--max-tokens", "2"],
                       input=b"recipe\n", capture_output=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "LOADED:\n" in r.stderr.decode()


def test_importing_the_cli_never_imports_tensorflow() -> None:
    code = "import sys, recipe_repl.frontends.cli; print(sorted(m for m in ('tensorflow','keras','tf2onnx') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.stdout.strip() == "[]"


def test_help_lists_subcommands_without_tensorflow() -> None:
    probe = (
        "import sys, atexit\n"
        "atexit.register(lambda: sys.stderr.write('LOADED:' + ','.join(sorted(m for m in "
        "('tensorflow', 'keras', 'tf2onnx', 'prompt_toolkit', 'rich') if m in sys.modules)) + '\\n'))\n"
        "from recipe_repl.frontends.cli import main\nmain()\n"
    )
    r = subprocess.run([sys.executable, "-c", probe, "--help"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert r.returncode == 0 and "generate" in r.stdout and "plugins" in r.stdout and "train" in r.stdout
    assert "LOADED:\n" in r.stderr
    assert "the lecture's max_tokens counts" in cli(["generate", "--help"]).stdout.decode()
