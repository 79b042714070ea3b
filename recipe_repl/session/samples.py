"""Samples without a frontend: what `recipe-repl generate PROMPT` writes, for training and the model card.

The per-epoch samples in training and the model card's samples come from `generate_samples`, so they
are the very samples `recipe-repl generate` prints for the same settings and seed (same session,
same built-in processors, same loop); nothing is shown while they are made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recipe_repl.base.errors import UserError
from recipe_repl.base.settings import Settings
from recipe_repl.generate.loop import Listener, NullListener, Sample
from recipe_repl.model.engine import Engine
from recipe_repl.plugin.manager import Plugins
from recipe_repl.session.session import ModelSpec, Session


class SilentFrontend:
    """A frontend that shows nothing: the samples are the caller's to use."""

    interactive = False
    model_probs = False  # nobody reads the model's probabilities of these samples

    def live_listener(self, session: Session) -> Listener:
        """Nothing is streamed."""
        return NullListener()

    def show_samples(self, session: Session, samples: list[Sample]) -> None:
        """Samples are returned, not shown."""

    def message(self, text: str, kind: str = "info") -> None:
        """Messages are dropped (the caller reports what it needs)."""

    def show(self, renderable: Any) -> None:
        """Tables are dropped."""

    def ask(self, question: str) -> str:
        """Nobody is there to ask."""
        raise UserError("this command needs an interactive terminal")


def generate_samples(engine: Engine, prompt: str, settings: Settings) -> list[Sample]:
    """What `recipe-repl generate PROMPT` writes, as samples (built-in plugins only)."""
    session = Session(Plugins(load_third_party=False), SilentFrontend(), ModelSpec(Path(engine.info.path)), settings,
                      engine=engine, keep_transcript=False)
    return session.prompt(prompt)
