"""Issue 14 §3 (bounded arguments) and §5 (no traceback, the right exit code): huge thread counts, bad eval
sizes, lost output (a full disk, a closed stdout), Ctrl-C during `generate`, an empty prompt, plugins that
end the process on import, and every entry point with a read-only HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile import run
from tests.tiny import EPICURIOUS_SAMPLE

REPO = Path(__file__).resolve().parents[1]
DATA = f"epicurious:{EPICURIOUS_SAMPLE}"


def proc(args: list[str], stdin: bytes = b"", env: dict[str, str] | None = None, stdout_to: str | None = None,
         close_stdout: bool = False, timeout: float = 180) -> subprocess.CompletedProcess[bytes]:
    """The real `recipe-repl` in a subprocess; stdout to a file such as /dev/full, or closed (`>&-`)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "RECIPE_REPL_NO_PLUGINS": "1", **(env or {})}
    cmd = [sys.executable, "-m", "recipe_repl", *args]
    if close_stdout:
        cmd = ["bash", "-c", 'exec "$@" >&-', "bash", *cmd]
    if stdout_to is None:
        return subprocess.run(cmd, input=stdin, capture_output=True, env=full_env, timeout=timeout)
    with open(stdout_to, "wb") as out:
        return subprocess.run(cmd, input=stdin, stdout=out, stderr=subprocess.PIPE, env=full_env, timeout=timeout)


def one_line(err: bytes) -> str:
    text = err.decode()
    assert "Traceback" not in text, text
    assert len(text.strip().splitlines()) == 1, text
    return text.strip()


# --- §3: bounded arguments -----------------------------------------------------------------------


@pytest.mark.parametrize("threads", ["5000", "65", "-1"])
def test_threads_out_of_bounds_is_one_line(random_model: Path, threads: str) -> None:
    code, out, err = run(["generate", "recipe", "--model", str(random_model), "--threads", threads])
    assert code == 2 and out == b""
    line = one_line(err)
    assert "threads" in line and "64" in line


def test_threads_within_bounds_work_and_help_says_the_bound(random_model: Path) -> None:
    code, out, err = run(["generate", "recipe", "--model", str(random_model), "--threads", "2", "--max-tokens", "3"])
    assert code == 0, err
    code, out, _ = run(["generate", "--help"])
    assert code == 0 and b"64" in out.split(b"--threads", 1)[1][:200]


@pytest.mark.parametrize("args", [["--batch-size", "0"], ["--limit", "-3"], ["--limit", "0"]])
def test_eval_sizes_must_be_positive(random_model: Path, args: list[str]) -> None:
    code, out, err = run(["eval", str(random_model), "--data", DATA, "--no-ngram", *args])
    assert code == 2 and out == b""
    line = one_line(err)
    assert line.startswith("error: ") and args[0] in line


def test_evaluate_api_refuses_bad_sizes(random_model: Path) -> None:
    from recipe_repl.export.evaluate import evaluate

    from recipe_repl.base.errors import UserError

    for kwargs in ({"batch_size": 0}, {"limit": 0}, {"limit": -3}):
        with pytest.raises(UserError):
            evaluate(random_model, data=DATA, ngram=False, **kwargs)


# --- §5: an empty prompt, Ctrl-C -----------------------------------------------------------------


@pytest.mark.parametrize("prompt", ["", "   "])
def test_generate_with_an_empty_prompt_is_an_error(random_model: Path, prompt: str) -> None:
    code, out, err = run(["generate", prompt, "--model", str(random_model)])
    assert code == 2 and out == b""
    assert "prompt is empty" in one_line(err)


def test_ctrl_c_during_generate_keeps_finished_samples_says_interrupted_and_exits_130(
        random_model: Path, tmp_path: Path) -> None:
    # Ctrl-C arrives while the second batch of 32 is being written: a plugin sends SIGINT to its own process.
    plugin = tmp_path / "ctrl_c.py"
    plugin.write_text(
        "import os, signal\n"
        "from recipe_repl.plugin.hookspecs import hookimpl\n"
        # Python's own Ctrl-C handler even when the test runner was started with SIGINT ignored (`nohup ... &`)
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "@hookimpl\n"
        "def on_token(step, sample_key):\n"
        "    if sample_key >= 32 and step == 2:\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
    )
    r = proc(["--plugin", str(plugin), "generate", "recipe for", "--model", str(random_model), "--n", "5000",
              "--seed", "1", "--max-tokens", "20"], env={"RECIPE_REPL_NO_PLUGINS": "0"})
    err = r.stderr.decode()
    assert r.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "interrupted"
    out = r.stdout.decode().splitlines()
    assert 32 <= len(out) < 5000  # the first batch finished and is kept; the rest never started
    assert all(line.startswith("Recipe for") for line in out)


# --- §5: plugins that end the process on import --------------------------------------------------


@pytest.mark.parametrize("raise_", ["SystemExit(3)", "SystemExit", "KeyboardInterrupt", "GeneratorExit",
                                    "type('Odd', (BaseException,), {})('odd')"])
def test_plugin_ending_the_process_on_import_is_a_plugin_problem(tmp_path: Path, random_model: Path,
                                                                   raise_: str) -> None:
    plugin = tmp_path / "quitter.py"
    plugin.write_text(f"raise {raise_}\n")
    code, out, err = run(["--plugin", str(plugin), "generate", "recipe", "--model", str(random_model),
                          "--max-tokens", "3"], plugins=True)
    assert code == 0, err
    assert out.decode().startswith("Recipe")
    assert f"warning: plugin {plugin} failed to import: " in err.decode()


def test_plugin_hook_calling_sys_exit_is_a_plugin_problem(tmp_path: Path, random_model: Path) -> None:
    plugin = tmp_path / "exiter.py"
    plugin.write_text(
        "import sys\n"
        "from recipe_repl.plugin.hookspecs import hookimpl\n"
        "@hookimpl\n"
        "def register_commands(register):\n"
        "    sys.exit('bye')\n"
    )
    code, out, err = run(["--plugin", str(plugin), "generate", "recipe", "--model", str(random_model),
                          "--max-tokens", "3"], plugins=True)
    assert code == 0, err
    assert "failed in register_commands: SystemExit: bye" in err.decode()


# --- §5: lost output -----------------------------------------------------------------------------


def entry_points(model: Path) -> list[tuple[list[str], bytes]]:
    """Every entry point that writes to stdout, with its input."""
    return [
        (["--model", str(model), "--max-tokens", "3"], b"recipe\nmix\n"),
        (["--model", str(model), "--max-tokens", "3", "--json"], b"recipe\n"),
        (["generate", "recipe", "--model", str(model), "--max-tokens", "3"], b""),
        (["generate", "recipe", "--model", str(model), "--max-tokens", "3", "--json"], b""),
        (["plugins"], b""),
        (["plugins", "--json"], b""),
        (["eval", str(model), "--data", DATA, "--no-ngram", "--limit", "1"], b""),
        (["--help"], b""),
        (["--version"], b""),
        (["generate", "--help"], b""),
        (["plugins", "--help"], b""),
        (["eval", "--help"], b""),
        (["train", "--help"], b""),
        (["export", "--help"], b""),
    ]


def read_only_home(tmp_path: Path) -> dict[str, str]:
    """HOME and XDG_* under a regular file: nothing can be created there, not even by root."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    home = str(blocker / "home")
    return {"HOME": home, "XDG_CONFIG_HOME": home + "/.config", "XDG_STATE_HOME": home + "/.local/state",
            "XDG_CACHE_HOME": home + "/.cache", "XDG_DATA_HOME": home + "/.local/share"}


def test_every_entry_point_with_a_read_only_home(random_model: Path, tmp_path: Path) -> None:
    env = read_only_home(tmp_path)
    for args, stdin in entry_points(random_model):
        r = proc(args, stdin, env=env)
        assert r.returncode == 0, (args, r.stderr)
        assert r.stdout.strip(), args
        assert b"Traceback" not in r.stderr, (args, r.stderr)


@pytest.mark.parametrize("how", ["/dev/full", "closed"])
def test_every_entry_point_with_lost_output_says_so_and_fails(random_model: Path, tmp_path: Path, how: str) -> None:
    if how == "/dev/full" and not Path("/dev/full").exists():
        pytest.skip("this system has no /dev/full")
    env = read_only_home(tmp_path)
    for args, stdin in entry_points(random_model):
        r = proc(args, stdin, env=env, stdout_to="/dev/full" if how == "/dev/full" else None,
                 close_stdout=how == "closed")
        err = r.stderr.decode()
        assert r.returncode == 1, (args, err)
        assert "Traceback" not in err and "Exception ignored" not in err, (args, err)
        assert err.strip().splitlines()[-1].startswith("error: cannot write the output: "), (args, err)
