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


class UsageError(UserError):
    """A command typed the wrong way (too many arguments, an unknown keyword).

    Raised inside a `:command`, the session completes the message with the command's registered
    usage and `(see :help NAME)`: handlers say what was wrong, never repeat their usage text.
    """

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class BadValue(UserError):
    """An argument of the right shape with a wrong value ("abc" for a number, 9 for a temperature).

    Raised inside a `:command`, the session adds an example of a good one: `example` if given, else
    the command's registered example (`e.g. :temp 0.7`), else `(see :help NAME)`.
    """

    def __init__(self, message: str, example: str = "") -> None:
        super().__init__(message)
        self.message, self.example = message, example


class NonFiniteLogits(ModelError):
    """The model's logits were NaN or infinite after some word: the contract says they are finite numbers.

    The load-time probe checks one step; later logits are checked where they are used (the generation
    loop, scoring, eval, the inspection views), each saying which word and step.
    """

    def __init__(self, message: str, position: int = -1, word: str = "") -> None:
        super().__init__(message)
        self.position, self.word = position, word
