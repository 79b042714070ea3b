"""Shared fixtures: pinned environment, small ONNX models, a plugin manager without third parties."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from recipe_repl.export.random_model import build_random_lstm

REPO = Path(__file__).resolve().parents[1]

WORDS = ["", "[UNK]"] + (
    "recipe for roast chicken the a and , . | mix salt pepper 1 / 2 cup oven bake until golden "
    "brown minutes in with heat add stir serve [bold] ( ) - ' ; : to of"
).split()


@pytest.fixture(autouse=True)
def pinned_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No user config, history, data or plugins leak in; rich renders at a fixed width without colour."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # no downloaded Epicurious copy leaks in
    monkeypatch.delenv("RECIPE_REPL_CONFIG", raising=False)
    monkeypatch.delenv("RECIPE_REPL_PLUGINS", raising=False)
    monkeypatch.delenv("RECIPE_REPL_NO_PLUGINS", raising=False)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)


@pytest.fixture(autouse=True)
def tensorflow_only_in_slow_tests(request: pytest.FixtureRequest):
    """A test that imports TensorFlow must be marked slow: `make check` runs the others, without TensorFlow.

    Checked in this process (a test whose subprocess imports TensorFlow is marked by hand). Once a slow
    test has imported it, later tests cannot be told apart, so `make check` (no slow test) is the run
    that catches every offender.
    """
    if request.node.get_closest_marker("slow") is not None or "tensorflow" in sys.modules:
        yield
        return
    yield
    if "tensorflow" in sys.modules:
        pytest.fail(f"{request.node.nodeid} imported TensorFlow: mark it @pytest.mark.slow "
                    "(make check runs the tests without that marker, and without TensorFlow)", pytrace=False)


@pytest.fixture(scope="session")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stateful LSTM ONNX file with random weights over a small vocabulary (no TensorFlow needed)."""
    return build_random_lstm(tmp_path_factory.mktemp("models") / "random.onnx", WORDS, scale=1.5)


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A training run of a tiny model on the Epicurious sample (TensorFlow: for slow tests), one per session."""
    from tests.tiny import cached_tiny_run

    return cached_tiny_run(tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """That run exported to a stateful ONNX file (TensorFlow: for slow tests)."""
    from tests.tiny import cached_tiny_onnx

    return cached_tiny_onnx(tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_stateless_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """That run exported to a stateless ONNX file (TensorFlow: for slow tests)."""
    from tests.tiny import cached_tiny_stateless_onnx

    return cached_tiny_stateless_onnx(tmp_path_factory)


@pytest.fixture()
def plugins():
    """Built-ins only: whatever is installed on the machine must not change the tests."""
    from recipe_repl.plugin.manager import Plugins

    return Plugins(load_third_party=False)
