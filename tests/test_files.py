"""Files that must not be lost: the one atomic writer, its lock, the config file, presets and `:save`."""

from __future__ import annotations

import multiprocessing
import os
import stat
import tomllib
from pathlib import Path

import pytest

from recipe_repl.base.config import Config, config_dir, config_path, state_dir
from recipe_repl.base.errors import UserError
from recipe_repl.base.settings import Settings
from recipe_repl.session.session import ModelSpec, Session
from tests.helpers import REPO, Recorder, cli, last_message

USER_CONFIG = """\
# my recipe-repl config: keep this comment
model = "~/models/mine.onnx"  # and this one
colour_scheme = "dark"        # a key this version does not know

[settings]
temperature = 0.7

[presets.gentle]
temperature = 0.2

[my_notes]                    # a whole table this version does not know
remember = ["salt", "pepper"]
"""


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- the atomic writer ------------------------------------------------------------------------------------------


def test_new_files_get_the_umask_permissions_and_replaced_ones_keep_theirs(tmp_path: Path) -> None:
    from recipe_repl.base import atomic

    old = os.umask(0o027)
    try:
        atomic.write_text(tmp_path / "a.txt", "new")
        assert mode(tmp_path / "a.txt") == 0o640
        private = tmp_path / "private.toml"
        private.write_text("x")
        private.chmod(0o600)
        atomic.write_text(private, "y")
        assert mode(private) == 0o600 and private.read_text() == "y"
        assert atomic.umask() == 0o027
    finally:
        os.umask(old)


def test_atomic_write_creates_folders_only_when_asked(tmp_path: Path) -> None:
    from recipe_repl.base import atomic

    with pytest.raises(FileNotFoundError):
        atomic.write_text(tmp_path / "missing" / "a.txt", "x")
    assert not (tmp_path / "missing").exists()
    atomic.write_bytes(tmp_path / "made" / "a.bin", b"x", parents=True)
    assert (tmp_path / "made" / "a.bin").read_bytes() == b"x"


def _hold_lock(path: str, held, release) -> None:
    from recipe_repl.base import atomic

    with atomic.file_lock(Path(path), note=str(os.getpid())):
        held.set()
        release.wait(30)


def test_file_lock_keeps_out_another_process_and_names_it(tmp_path: Path) -> None:
    from recipe_repl.base import atomic

    lock = tmp_path / ".lock"
    ctx = multiprocessing.get_context("spawn")
    held, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(lock), held, release))
    proc.start()
    try:
        assert held.wait(60)
        with pytest.raises(atomic.Locked) as caught, atomic.file_lock(lock, timeout=0):
            pass
        assert caught.value.holder == str(proc.pid)
    finally:
        release.set()
        proc.join(60)
    with atomic.file_lock(lock, timeout=0):  # free again once the holder let go
        assert lock.exists()
    assert not lock.exists()  # the lock file goes with the lock


# --- where the config lives ------------------------------------------------------------------------------------


def test_config_and_state_folders_follow_xdg_then_platformdirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    import platformdirs

    assert config_path() == tmp_path / "config" / "recipe-repl" / "config.toml"  # pinned by conftest
    assert state_dir() == tmp_path / "state" / "recipe-repl"
    monkeypatch.setenv("RECIPE_REPL_CONFIG", str(tmp_path / "elsewhere.toml"))
    assert config_path() == tmp_path / "elsewhere.toml"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")  # the XDG spec says to ignore relative paths
    monkeypatch.delenv("XDG_STATE_HOME")
    assert config_dir() == platformdirs.user_config_path("recipe-repl", appauthor=False)
    assert state_dir() == platformdirs.user_state_path("recipe-repl", appauthor=False)


# --- presets: read-modify-write under a lock, the user's file kept ---------------------------------------------------


def test_preset_save_keeps_comments_unknown_keys_and_tables(tmp_path: Path, umask_022) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_CONFIG)
    config = Config.load(path)
    config.save_preset("bold", Settings(temperature=1.3, top_k=40, seed=7, use=(("banwords", ("salt",)),)))
    text = path.read_text()
    assert text.startswith(USER_CONFIG.split("[my_notes]")[0])  # everything before is byte for byte the same
    assert "[my_notes]                    # a whole table this version does not know" in text
    data = tomllib.loads(text)
    assert data["colour_scheme"] == "dark" and data["my_notes"] == {"remember": ["salt", "pepper"]}
    assert data["presets"]["gentle"] == {"temperature": 0.2}
    assert data["presets"]["bold"]["temperature"] == 1.3 and data["presets"]["bold"]["seed"] == 7
    assert data["presets"]["bold"]["use"] == [["banwords", ["salt"]]]
    assert Settings.from_mapping(data["presets"]["bold"]).use == (("banwords", ("salt",)),)
    assert sorted(config.presets) == ["bold", "gentle"]
    assert mode(path) == 0o644  # the file keeps its mode
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temp or lock file left


def _save_presets(path: str, who: int, count: int, barrier) -> None:
    config = Config.load(Path(path))  # each session read the file when it started
    barrier.wait()
    for i in range(count):
        config.save_preset(f"p{who}_{i}", Settings(temperature=round(0.1 * (who + 1), 1), top_k=i))


def test_presets_saved_by_several_sessions_at_once_are_all_kept(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_CONFIG)
    sessions, each = 4, 20
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(sessions)
    procs = [ctx.Process(target=_save_presets, args=(str(path), who, each, barrier)) for who in range(sessions)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * sessions
    data = tomllib.loads(path.read_text())
    saved = {name for name in data["presets"] if name.startswith("p")}
    assert saved == {f"p{who}_{i}" for who in range(sessions) for i in range(each)}  # 80 of 80
    assert (data["presets"]["p2_5"]["temperature"], data["presets"]["p2_5"]["top_k"]) == (0.3, 5)
    assert data["my_notes"] == {"remember": ["salt", "pepper"]} and "# my recipe-repl config" in path.read_text()


def test_a_failed_preset_save_leaves_no_phantom_preset(random_model: Path, plugins, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file where the config folder should be")
    config = Config(blocker / "recipe-repl" / "config.toml")
    session = Session(plugins, Recorder(interactive=False), ModelSpec(random_model), Settings(seed=1, max_tokens=5), config)
    with pytest.raises(UserError, match="cannot write"):
        session.handle_line(":preset save mine")
    session.handle_line(":preset list")
    assert "mine" not in last_message(session) and "none yet" in last_message(session)


def test_preset_save_refuses_to_overwrite_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[settings\ntemperature = 0.5\n")
    with pytest.raises(UserError, match="not valid TOML"):
        Config(path).save_preset("x", Settings())
    assert path.read_text() == "[settings\ntemperature = 0.5\n"


# --- bad values in the config file: one line naming the file and the key ---------------------------------------------


@pytest.mark.parametrize(("line", "key"), [('seed = "abc"', "seed"), ("seed = [1, 2]", "seed"),
                                           ("max_tokens = inf", "max_tokens"), ("seed = true", "seed")])
def test_bad_config_values_are_one_line_and_exit_2(random_model: Path, tmp_path: Path, line: str, key: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[settings]\n{line}\n")
    r = cli(["--model", str(random_model)], "recipe for roast\n", env={"RECIPE_REPL_CONFIG": str(path)})
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert str(path) in err and repr(key) in err


def test_good_seed_spellings_still_load() -> None:
    assert Settings.from_mapping({"seed": 42}).seed == 42
    assert Settings.from_mapping({"seed": "42"}).seed == 42
    assert Settings.from_mapping({"seed": "off"}).seed is None


# --- :save ---------------------------------------------------------------------------------------------------------


def test_save_in_batch_mode_writes_the_samples_so_far(random_model: Path, tmp_path: Path, umask_022) -> None:
    out = tmp_path / "batch.md"
    r = cli(["--model", str(random_model), "--seed", "1", "--max-tokens", "4"],
            f"recipe for roast\nmix salt\n:save {out}\nbake\n")
    assert r.returncode == 0, r.stderr
    assert "saved 3 entries (2 samples)" in r.stderr.decode()  # two prompts and the :save line
    text = out.read_text()
    assert "## recipe for roast" in text and "## mix salt" in text and "bake" not in text
    samples = r.stdout.decode().splitlines()[:2]
    assert all(f"> {s}" in text for s in samples)  # each sample under its own prompt
    assert mode(out) == 0o644  # not 0600


def test_save_into_a_missing_folder_says_so(random_model: Path, plugins, tmp_path: Path) -> None:
    session = Session(plugins, Recorder(interactive=False), ModelSpec(random_model), Settings(seed=1, max_tokens=5))
    session.handle_line("recipe for roast")
    with pytest.raises(UserError, match="does not exist"):
        session.handle_line(f":save {tmp_path / 'no' / 'such' / 's.md'}")
    assert not (tmp_path / "no").exists()
    (tmp_path / "dir.md").mkdir()
    with pytest.raises(UserError, match="is a folder"):
        session.handle_line(f":save {tmp_path / 'dir.md'}")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is not a folder"):
        session.handle_line(f":save {tmp_path / 'file' / 's.md'}")


def test_the_transcript_keeps_the_last_samples_within_its_bound(random_model: Path, plugins, tmp_path: Path):
    from recipe_repl.session.transcript import Transcript, TranscriptEntry

    transcript = Transcript(limit=9)  # tokens, each entry counting one more
    for i in range(5):
        transcript.append(TranscriptEntry("prompt", f"p{i}", {}, [{"text": f"s{i}", "tokens": ["a", "b"]}]))
    assert [e.text for e in transcript] == ["p2", "p3", "p4"] and transcript.dropped == 2
    transcript.append(TranscriptEntry("prompt", "big", {}, [{"text": "s", "tokens": ["w"] * 20}]))
    assert [e.text for e in transcript] == ["big"]  # the newest entry is kept whole
    session = Session(plugins, Recorder(interactive=False), ModelSpec(random_model), Settings(seed=1, max_tokens=3))
    for prompt in ("roast", "mix", "bake"):
        session.handle_line(prompt)
    entries = list(session.transcript)
    room = 1 + len(entries[-1].samples[0]["tokens"]) + 1  # "bake" and the :save line, nothing older
    session.transcript = Transcript(limit=room)
    for entry in entries:
        session.transcript.append(entry)
    session.handle_line(f":save {tmp_path / 's.md'}")  # the :save line itself is an entry too
    message = last_message(session)
    assert "saved 2 entries (1 sample)" in message, message
    assert f"keeps the entries of its last {room} tokens: 2 earlier entries are not in the file" in message
    assert "## bake" in (tmp_path / "s.md").read_text() and "## mix" not in (tmp_path / "s.md").read_text()


def test_start_up_reads_the_config_without_tomlkit(random_model: Path, tmp_path: Path) -> None:
    import subprocess
    import sys


    path = tmp_path / "config.toml"
    path.write_text(USER_CONFIG.replace("~/models/mine.onnx", str(random_model)))
    probe = ("import sys, atexit\n"
             "atexit.register(lambda: sys.stderr.write(f'TOMLKIT:{\"tomlkit\" in sys.modules}\\n'))\n"
             "from recipe_repl.frontends.cli import main\nmain()\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "RECIPE_REPL_CONFIG": str(path)}
    r = subprocess.run([sys.executable, "-c", probe, "--max-tokens", "2"], input=b"recipe\n:preset list\n",
                       capture_output=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "presets: gentle" in r.stderr.decode() and "TOMLKIT:False" in r.stderr.decode()
