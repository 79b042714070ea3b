"""What the test modules share (a test module never imports another): a REPL typed into through a pipe,
the command line run in-process, a frontend that records, plugins written as files, example plugins
installed without a network."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from recipe_repl.base.errors import UserError
from recipe_repl.base.settings import Settings
from recipe_repl.frontends.cli import main
from recipe_repl.frontends.repl import ReplFrontend, run_repl
from recipe_repl.generate.loop import NullListener
from recipe_repl.plugin.manager import Plugins
from recipe_repl.session.session import ModelSpec, Session

REPO = Path(__file__).resolve().parents[1]
CTRL_C, CTRL_D = "\x03", "\x04"
RECIPE_REPL = [sys.executable, "-m", "recipe_repl"]


# --- the REPL through a pipe ------------------------------------------------------------------------


@dataclass
class Run:
    """What one scripted REPL run left behind."""

    out: str
    status: int
    session: Session


def run_script(model: Path, plugins, keys: str, settings: Settings | None = None, history=None,
               width: int = 80) -> Run:
    """Type `keys` into a REPL on `model` and return the rendered output, exit status and session."""
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, highlight=False)
    made: list[Session] = []

    def make_session(frontend: ReplFrontend) -> Session:
        made.append(Session(plugins, frontend, ModelSpec(model), settings or Settings(seed=1)))
        return made[0]

    with create_pipe_input() as inp:
        inp.send_text(keys)
        status = run_repl(make_session, console=console, input=inp, output=DummyOutput(),
                          history=history if history is not None else InMemoryHistory())
    return Run(buf.getvalue(), status, made[0])


def lines(*typed: str) -> str:
    """Typed lines, each ended with Enter, then Ctrl-D."""
    return "".join(t + "\r" for t in typed) + CTRL_D


# --- the command line in-process -------------------------------------------------------------------


@dataclass
class Result:
    """What one run of the entry point left behind (bytes, as a process's would be)."""

    returncode: int
    stdout: bytes
    stderr: bytes


def cli(args: list[str], stdin: bytes | str = b"", env: dict[str, str] | None = None) -> Result:
    """`recipe-repl ARGS` in-process: the real `main`, with stdin/stdout/stderr swapped by CliRunner."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    runner = CliRunner()
    with runner.isolation(input=data, env=env) as (out, err, _):
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        sys.stdout.flush()
        sys.stderr.flush()
        return Result(code, out.getvalue(), err.getvalue())


# --- a recording frontend, plugins as files -----------------------------------------------------------


HEADER = "from recipe_repl.plugin.hookspecs import hookimpl\nfrom recipe_repl.base.errors import UserError\n"


class Recorder:
    """A frontend that keeps what it is given: messages and tables as `lines` (kind, text), messages also
    in `messages` and tables as drawn in `shown`, and the samples. Interactive, like the REPL's, unless
    told otherwise (batch mode's is not)."""

    def __init__(self, interactive: bool = True) -> None:
        self.interactive = interactive
        self.lines: list[tuple[str, str]] = []
        self.messages: list[tuple[str, str]] = []
        self.shown: list[Any] = []
        self.samples: list[Any] = []

    def live_listener(self, session: Session) -> NullListener:
        return NullListener()

    def show_samples(self, session: Session, samples: list[Any]) -> None:
        self.samples.extend(samples)

    def message(self, text: str, kind: str = "info") -> None:
        self.lines.append((kind, text))
        self.messages.append((kind, text))

    def show(self, renderable: Any) -> None:
        self.lines.append(("show", str(renderable)))
        self.shown.append(renderable)

    def ask(self, question: str) -> str:
        raise UserError("nobody to ask")

    def text(self, kind: str | None = None) -> str:
        return "\n".join(t for k, t in self.lines if kind is None or k == kind)


def last_message(session: Session) -> str:
    """The text of the last message a `Recorder` frontend was given."""
    return session.frontend.messages[-1][1]  # type: ignore[attr-defined]


def write_plugin(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + textwrap.dedent(body), encoding="utf-8")
    return path


def make_plugins(*paths: Path) -> tuple[Plugins, list[str]]:
    reported: list[str] = []
    return Plugins(load_third_party=True, modules=[str(p) for p in paths], report=reported.append), reported


def make_session(plugins: Plugins, model: Path, **settings: Any) -> tuple[Session, Recorder]:
    frontend = Recorder()
    session = Session(plugins, frontend, ModelSpec(model, "cpu"), Settings(**{"seed": 1, "max_tokens": 20, **settings}))
    return session, frontend


def run_lines(session: Session, frontend: Recorder, *lines: str) -> None:
    """What the REPL does with each line: user errors become a message and the prompt comes back."""
    for line in lines:
        try:
            session.handle_line(line)
        except UserError as exc:
            frontend.message(str(exc), "error")


# --- installed example plugins -------------------------------------------------------------------------


def pip_install_target(sources: list[Path], target: Path) -> None:
    """`pip install --target` without network or build isolation (setuptools comes from the venv)."""
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-build-isolation",
           "--disable-pip-version-check", "--target", str(target), *map(str, sources)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr


def user_env(site: Path, tmp_path: Path) -> dict[str, str]:
    """The environment of a user whose plugins are installed in `site`, with private config and state."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECIPE_REPL_")}
    env.update(PYTHONPATH=f"{site}{os.pathsep}{REPO}", XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_STATE_HOME=str(tmp_path / "state"), COLUMNS="100")
    return env


def recipe_repl(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RECIPE_REPL, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120)
