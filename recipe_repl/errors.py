"""Errors a user can cause; the CLI turns them into one clear line and a non-zero exit."""

from __future__ import annotations


class UserError(Exception):
    """A problem with what the user gave us (a path, an argument, a file); printed as one line."""

    exit_code = 2


class OutputError(UserError):
    """Output that could not be written (a full disk, a closed stdout): what was asked for is lost."""

    exit_code = 1

    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot write the output: {reason}")


class ModelError(UserError):
    """A model file that cannot be loaded or does not follow the ONNX contract."""
