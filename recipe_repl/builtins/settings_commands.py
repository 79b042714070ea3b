"""Built-in commands that change the generation settings: :temp, :topk, :topp, :minp, :repeat,
:max, :seed, :n, :unk, :stop, :raw, :use, :settings, :reset."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from recipe_repl.commands import split_args
from recipe_repl.errors import UserError
from recipe_repl.hookspecs import hookimpl
from recipe_repl.sampling import build_chain
from recipe_repl.session import Session
from recipe_repl.settings import Settings

ON_OFF = ("on", "off")


def _one_arg(args: str, usage: str) -> str:
    parts = args.split()
    if len(parts) != 1:
        raise UserError(f"usage: {usage}")
    return parts[0]


def _number(text: str, kind: Callable[[str], Any], what: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise UserError(f"{what} must be a number, not {text!r}") from None
    if isinstance(value, float) and value != value:  # NaN
        raise UserError(f"{what} must be a number, not {text!r}")
    return value


def _setter(field: str, kind: Callable[[str], Any], usage: str, what: str) -> Callable[[Session, str], None]:
    def handler(session: Session, args: str) -> None:
        value = _number(_one_arg(args, usage), kind, what)
        session.update(**{field: value})
        session.say(f"{what} = {getattr(session.settings, field)}")

    return handler


def _on_off(args: str, usage: str) -> bool:
    word = _one_arg(args, usage).lower()
    if word not in ON_OFF:
        raise UserError(f"usage: {usage}")
    return word == "on"


def _seed(session: Session, args: str) -> None:
    word = _one_arg(args, ":seed N|off")
    value = None if word.lower() == "off" else _number(word, int, "seed")
    session.update(seed=value)
    session.say(f"seed = {session.settings.seed if value is not None else 'off (fresh randomness)'}")


def _unk(session: Session, args: str) -> None:
    allow = _on_off(args, ":unk on|off")
    session.update(allow_unk=allow)
    session.say("[UNK] " + ("allowed in output" if allow else "banned from output"))


def _stop(session: Session, args: str) -> None:
    if not args:
        raise UserError("usage: :stop TEXT|off")
    value = None if args.strip().lower() == "off" else args
    session.update(stop=value)
    session.say(f"stop string = {value!r}" if value else "stop string off")


def _raw(session: Session, args: str) -> None:
    session.update(raw=_on_off(args, ":raw on|off"))
    session.say("showing raw tokens" if session.settings.raw else "showing readable text")


def _use(session: Session, args: str) -> None:
    parts = split_args(args)
    if not parts or parts[0] == "list":
        active = ", ".join(f"{n} {' '.join(a)}".strip() for n, a in session.settings.use) or "none"
        names = ", ".join(sorted(s.name for s in session.plugins.processor_specs() if not s.automatic))
        session.say(f"processors in use: {active}; available: {names or 'none (install a plugin)'}")
        return
    if parts[0] == "off":
        remaining = tuple(u for u in session.settings.use if len(parts) > 1 and u[0] != parts[1])
        session.update(use=remaining)
        session.say(f"processor {parts[1]} off" if len(parts) > 1 else "all extra processors off")
        return
    name, rest = parts[0], tuple(parts[1:])
    specs = {s.name: s for s in session.plugins.processor_specs()}
    if name not in specs:
        available = ", ".join(sorted(n for n, s in specs.items() if not s.automatic)) or "none"
        raise UserError(f"unknown processor {name!r} (available: {available})")
    if specs[name].automatic:
        raise UserError(f"{name} is built in and driven by the settings (see :help)")
    candidate = session.settings.replace(use=(*[u for u in session.settings.use if u[0] != name], (name, rest)))
    build_chain(session.plugins.processor_specs(), candidate, session.engine.vocab)  # validates the arguments
    session.update(use=candidate.use)
    session.say(f"using {name} {' '.join(rest)}".rstrip())


def _use_complete(session: Session, text: str) -> Iterable[str]:
    names = [s.name for s in session.plugins.processor_specs() if not s.automatic]
    return [*names, "off", "list"]


def _settings(session: Session, args: str) -> None:
    from rich.table import Table

    table = Table(title="settings", show_header=False, title_style="bold")
    table.add_column(style="cyan")
    table.add_column()
    for key, value in session.settings.as_dict().items():
        table.add_row(key, "off" if value is None else str(value))
    info = session.engine.info
    table.add_row("model", f"{info.path} ({info.kind}, vocab {info.vocab_size})")
    table.add_row("provider", info.provider)
    session.frontend.show(table)


def _reset(session: Session, args: str) -> None:
    session.update(session.config.starting_settings() if session.config.settings else Settings())
    session.say("settings reset")


@hookimpl
def register_commands(register: Any) -> None:
    """The settings commands."""
    register("temp", _setter("temperature", float, ":temp T", "temperature"), usage=":temp T",
             help="temperature, 0 ≤ T ≤ 5 (0 = greedy)", aliases=("temperature",),
             complete=lambda s, t: ["0", "0.2", "0.5", "0.8", "1.0", "1.5"])
    register("topk", _setter("top_k", int, ":topk K", "top-k"), usage=":topk K",
             help="keep the K most likely words (0 = off)", complete=lambda s, t: ["0", "5", "10", "50"])
    register("topp", _setter("top_p", float, ":topp P", "top-p"), usage=":topp P",
             help="nucleus sampling, 0 < P ≤ 1 (1 = off)", complete=lambda s, t: ["0.5", "0.9", "0.95", "1"])
    register("minp", _setter("min_p", float, ":minp P", "min-p"), usage=":minp P",
             help="drop words below P × the top word's probability (0 = off)")
    register("repeat", _setter("repetition_penalty", float, ":repeat R", "repetition penalty"),
             usage=":repeat R", help="repetition penalty (1 = off, 1.2 is mild)")
    register("max", _setter("max_tokens", int, ":max N", "max tokens"), usage=":max N",
             help="generate at most N tokens (the prompt does not count)")
    register("seed", _seed, usage=":seed N|off", help="seed the sampler for reproducible samples",
             complete=lambda s, t: ["off", "42"])
    register("n", _setter("n", int, ":n N", "samples per prompt"), usage=":n N", help="samples per prompt")
    register("unk", _unk, usage=":unk on|off", help="allow [UNK] in the output", complete=lambda s, t: ON_OFF)
    register("stop", _stop, usage=":stop TEXT|off", help="end a sample once its text contains TEXT")
    register("raw", _raw, usage=":raw on|off", help="show raw tokens instead of readable text",
             complete=lambda s, t: ON_OFF)
    register("use", _use, usage=":use NAME [ARGS] | off [NAME] | list",
             help="add a plugin's logits processor to the chain", complete=_use_complete)
    register("settings", _settings, help="show the current settings and model")
    register("reset", _reset, help="back to the starting settings")
