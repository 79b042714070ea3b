"""Session: one loaded model, the live settings, the last prompt and samples, and the command runner.

    session     Session, ModelSpec and the Frontend protocol a REPL or batch mode implements
    records     a sample as plain data (`--json`, `:save`): every probability says which distribution
    transcript  what `:save` keeps, within a memory bound

The REPL and batch mode each drive one `Session`; commands (built-in or a plugin's) act on it.
"""

from recipe_repl.session.session import Frontend, ModelSpec, Session

__all__ = ["Frontend", "ModelSpec", "Session"]
