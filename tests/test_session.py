"""Session-level behaviour of the built-in commands, through the same parser the REPL and batch use."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from recipe_repl.export.random_model import build_random_lstm

from recipe_repl.base.config import Config
from recipe_repl.base.errors import UserError
from recipe_repl.base.settings import Settings
from recipe_repl.generate.loop import StopReason
from recipe_repl.session.session import ModelSpec, Session
from tests.conftest import WORDS
from tests.helpers import Recorder, last_message


@pytest.fixture()
def session(random_model: Path, plugins, tmp_path: Path) -> Session:
    config = Config(tmp_path / "cfg" / "config.toml")
    return Session(plugins, Recorder(interactive=False), ModelSpec(random_model), Settings(seed=1, max_tokens=10), config)


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [
        (":temp 0.2", "temperature", 0.2),
        (":temperature 0", "temperature", 0.0),
        (":topk 5", "top_k", 5),
        (":topp 0.9", "top_p", 0.9),
        (":minp 0.05", "min_p", 0.05),
        (":repeat 1.3", "repetition_penalty", 1.3),
        (":max 42", "max_tokens", 42),
        (":seed off", "seed", None),
        (":seed 7", "seed", 7),
        (":n 3", "n", 3),
        (":unk off", "allow_unk", False),
        (":stop step 3", "stop", "step 3"),
        (":raw on", "raw", True),
    ],
)
def test_setting_commands(session: Session, line: str, field: str, value: Any) -> None:
    session.handle_line(line)
    assert getattr(session.settings, field) == value


@pytest.mark.parametrize(
    "line", [":temp", ":temp hot", ":temp 7", ":temp nan", ":topk -1", ":topp 0", ":max 0", ":unk maybe",
             ":seed -3", ":n 1 2", ":stop"]
)
def test_bad_arguments_leave_settings_unchanged(session: Session, line: str) -> None:
    before = session.settings
    with pytest.raises(UserError):
        session.handle_line(line)
    assert session.settings == before


def test_unknown_command_suggests_the_closest(session: Session) -> None:
    with pytest.raises(UserError, match=r"did you mean :topk"):
        session.handle_line(":topkk 3")


def test_prompt_generates_and_remembers(session: Session) -> None:
    samples = session.handle_line("recipe for roast")
    assert len(samples) == 1 and session.last_prompt == "recipe for roast"
    assert session.frontend.samples == samples  # type: ignore[attr-defined]


def test_continue_goes_on_from_the_kept_state(session: Session) -> None:
    session.handle_line(":unk off")
    session.handle_line(":max 6")
    [first] = session.handle_line("recipe for roast")
    if first.stop_reason is StopReason.STOP_TOKEN:
        pytest.fail("random model stopped at once; change the seed")
    session.handle_line(":continue")
    [more] = session.last_samples
    assert more.prompt_words == first.prompt_words + first.words
    assert more.text.startswith(first.text.rstrip("."))


def test_continue_without_a_sample_is_a_clear_error(session: Session) -> None:
    with pytest.raises(UserError, match="nothing to continue"):
        session.handle_line(":continue")


def test_model_switch_keeps_the_old_model_on_failure(session: Session, tmp_path: Path) -> None:
    old = session.engine
    bad = tmp_path / "bad.onnx"
    bad.write_text("nope")
    with pytest.raises(UserError, match="cannot load model"):
        session.handle_line(f":model {bad}")
    assert session.engine is old
    other = build_random_lstm(tmp_path / "other.onnx", WORDS, seed=3)
    session.handle_line(f":model {other}")
    assert session.engine is not old and session.engine.info.path == str(other)


def test_provider_cuda_without_cuda_is_a_clear_error(session: Session) -> None:
    from recipe_repl.model.engine import available_providers

    if "CUDAExecutionProvider" in available_providers():
        pytest.skip("this machine's onnxruntime offers CUDA")
    with pytest.raises(UserError, match="CUDA"):
        session.handle_line(":provider cuda")
    session.handle_line(":provider auto")
    assert session.engine.info.provider == "cpu"


def test_save_markdown_and_json(session: Session, tmp_path: Path) -> None:
    session.handle_line(":temp 0.5")
    session.handle_line("recipe for roast")
    md, js = tmp_path / "s.md", tmp_path / "s.json"
    session.handle_line(f":save {md}")
    session.handle_line(f":save {js}")
    text = md.read_text()
    assert "## recipe for roast" in text and "temperature 0.5" in text and "`:temp 0.5`" in text
    data = json.loads(js.read_text())
    prompts = [e for e in data["entries"] if e["kind"] == "prompt"]
    assert prompts[0]["samples"][0]["prompt"] == "recipe for roast"
    with pytest.raises(UserError, match=r"\.md"):
        session.handle_line(f":save {tmp_path / 's.docx'}")
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


def test_presets_round_trip_through_the_config_file(session: Session) -> None:
    session.handle_line(":temp 0.3")
    session.handle_line(":topk 7")
    session.handle_line(":preset save cautious")
    data = tomllib.loads(session.config.path.read_text())
    assert data["presets"]["cautious"]["temperature"] == 0.3
    session.handle_line(":reset")
    assert session.settings.temperature == 1.0
    session.handle_line(":preset cautious")
    assert (session.settings.temperature, session.settings.top_k) == (0.3, 7)
    session.handle_line(":preset list")
    assert "cautious" in last_message(session)
    with pytest.raises(UserError, match="no preset"):
        session.handle_line(":preset bold")


def test_config_file_settings_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('provider = "cpu"\n[settings]\ntemperature = 0.4\nseed = "off"\n')
    cfg = Config.load(path)
    assert cfg.provider == "cpu" and cfg.starting_settings().temperature == 0.4
    path.write_text("[settings\n")
    with pytest.raises(UserError, match="not valid TOML"):
        Config.load(path)
    path.write_text("[settings]\ntemprature = 1\n")
    with pytest.raises(UserError, match="unknown setting"):
        Config.load(path).starting_settings()


def test_help_lists_and_explains(session: Session) -> None:
    session.handle_line(":help")
    listing = session.frontend.shown[-1]  # type: ignore[attr-defined]
    assert (":temp T", "temperature, 0 ≤ T ≤ 5 (0 = greedy)") in listing.rows
    session.handle_line(":help temp")
    assert any("temperature" in m for _, m in session.frontend.messages)  # type: ignore[attr-defined]


def test_quit(session: Session) -> None:
    session.handle_line(":exit")
    assert session.quit_requested


def test_a_command_that_crashes_becomes_a_user_error(session: Session) -> None:
    from recipe_repl.plugin.commands import CommandSpec

    def boom(s, a):
        raise RuntimeError("kaput")

    session.plugins.commands.add(CommandSpec("boom", boom, plugin="demo"))
    with pytest.raises(UserError, match="boom failed .demo.: RuntimeError: kaput"):
        session.handle_line(":boom")
