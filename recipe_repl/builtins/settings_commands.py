"""Built-in commands that change the generation settings: :temp, :topk, :topp, :minp, :repeat,
:max, :seed, :n, :unk, :stop, :raw, :use, :settings, :reset."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from recipe_repl.base.errors import BadValue, UsageError
from recipe_repl.base.settings import GREEDY_BELOW, Settings
from recipe_repl.generate.sampling import build_chain
from recipe_repl.plugin.commands import no_args, one_arg, split_args
from recipe_repl.plugin.hookspecs import hookimpl
from recipe_repl.session.session import Session

ON_OFF = ("on", "off")
SEED_DETAILS = (
    "With a seed, a prompt gives the same samples every time: typed twice in this session, in a new session, "
    "in batch mode (on any line, at any batch size) and with `recipe-repl generate --seed N`. Sample i of a "
    "prompt (:n) draws with a generator seeded by the seed, the prompt as the model reads it (so \"Recipe  for "
    "roast\" is \"recipe for roast\") and i. :continue, :back then :continue, :branch and :pick's Enter go on "
    "with the sample's own generator, so the same commands after the same prompt give the same text; :best N's "
    "samples are samples 1 to N of the prompt. Not the same: another model or vocabulary, any other setting "
    "(temperature, top-k, …, :max only cuts), another version of recipe-repl or numpy. Temperature 0 and beam "
    "search need no seed: they never draw. :seed off draws fresh randomness for every sample.")

# Errors name no usage or example here: `Session.run_command` adds the registered ones (see
# `commands.explain`), so every command answers a mistake the same way.


def _number(text: str, kind: Callable[[str], Any], what: str) -> Any:
    whole = " whole" if kind is int else ""
    try:
        value = kind(text)
    except ValueError:
        raise BadValue(f"{what} must be a{whole} number, not {text!r}") from None
    if isinstance(value, float) and value != value:  # NaN
        raise BadValue(f"{what} must be a number, not {text!r}")
    return value


def _setter(field: str, kind: Callable[[str], Any], what: str) -> Callable[[Session, str], None]:
    def handler(session: Session, args: str) -> None:
        value = _number(one_arg(args), kind, what)
        session.update(**{field: value})
        session.say(f"{what} = {getattr(session.settings, field)}")

    return handler


def _on_off(args: str) -> bool:
    word = one_arg(args).lower()
    if word not in ON_OFF:
        raise UsageError(f"on or off, not {word!r}")
    return word == "on"


def _seed(session: Session, args: str) -> None:
    word = one_arg(args)
    if word.lower() == "off":
        value = None
    else:
        value = _number(word, int, "seed")
    session.update(seed=value)
    session.say(f"seed = {session.settings.seed if value is not None else 'off (fresh randomness)'}")


def _unk(session: Session, args: str) -> None:
    allow = _on_off(args)
    session.update(allow_unk=allow)
    session.say("[UNK] " + ("allowed in output" if allow else "banned from output"))


def _stop(session: Session, args: str) -> None:
    if not args:
        raise UsageError()
    value = None if args.strip().lower() == "off" else args
    session.update(stop=value)
    session.say(f"stop string = {value!r}" if value else "stop string off")


def _raw(session: Session, args: str) -> None:
    session.update(raw=_on_off(args))
    session.say("showing raw tokens" if session.settings.raw else "showing readable text")


def _use(session: Session, args: str) -> None:
    parts = split_args(args)
    if (parts[:1] == ["list"] and len(parts) > 1) or (parts[:1] == ["off"] and len(parts) > 2):
        raise UsageError("too many arguments")
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
        raise BadValue(f"unknown processor {name!r} — available: {available}")
    if specs[name].automatic:
        raise BadValue(f"{name} is built in and driven by the settings (:settings shows them)")
    candidate = session.settings.replace(use=(*[u for u in session.settings.use if u[0] != name], (name, rest)))
    build_chain(session.plugins.processor_specs(), candidate, session.engine.vocab)  # validates the arguments
    session.update(use=candidate.use)
    session.say(f"using {name} {' '.join(rest)}".rstrip())


def _use_complete(session: Session, text: str) -> Iterable[str]:
    names = [s.name for s in session.plugins.processor_specs() if not s.automatic]
    return [*names, "off", "list"]


def _settings(session: Session, args: str) -> None:
    from rich.table import Table

    no_args(args)
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
    no_args(args)
    session.update(session.config.starting_settings() if session.config.settings else Settings())
    session.say("settings reset")


@hookimpl
def register_commands(register: Any) -> None:
    """The settings commands."""
    register("temp", _setter("temperature", float, "temperature"), usage=":temp T", example=":temp 0.7",
             help="temperature, 0 ≤ T ≤ 5 (0 = greedy)", aliases=("temperature",),
             details=f"Logits are divided by T before the softmax: below 1 the likely words gain, above 1 the "
                     f"unlikely ones. 0 is greedy: the most likely word every time, no randomness. Any T below "
                     f"{GREEDY_BELOW:g} is greedy too (float32 logits divided by less overflow, and long before "
                     "that only the top word is ever drawn); the records keep the T you set.",
             complete=lambda s, t: ["0", "0.2", "0.5", "0.8", "1.0", "1.5"])
    register("topk", _setter("top_k", int, "top-k"), usage=":topk K", example=":topk 10",
             help="keep the K most likely words (0 = off)", complete=lambda s, t: ["0", "5", "10", "50"])
    register("topp", _setter("top_p", float, "top-p"), usage=":topp P", example=":topp 0.9",
             help="nucleus sampling, 0 < P ≤ 1 (1 = off)", complete=lambda s, t: ["0.5", "0.9", "0.95", "1"])
    register("minp", _setter("min_p", float, "min-p"), usage=":minp P", example=":minp 0.05",
             help="drop words below P × the top word's probability (0 = off)")
    register("repeat", _setter("repetition_penalty", float, "repetition penalty"), usage=":repeat R",
             example=":repeat 1.2", help="repetition penalty (1 = off, 1.2 is mild)")
    register("max", _setter("max_tokens", int, "max tokens"), usage=":max N", example=":max 200",
             help="generate at most N tokens (the prompt does not count)")
    register("seed", _seed, usage=":seed N|off", example=":seed 42", help="seed the sampler for reproducible samples",
             complete=lambda s, t: ["off", "42"], details=SEED_DETAILS)
    register("n", _setter("n", int, "samples per prompt"), usage=":n N", example=":n 3", help="samples per prompt")
    register("unk", _unk, usage=":unk on|off", example=":unk off", help="allow [UNK] in the output",
             complete=lambda s, t: ON_OFF)
    register("stop", _stop, usage=":stop TEXT|off", example=":stop Step 3",
             help="end a sample once its text contains TEXT")
    register("raw", _raw, usage=":raw on|off", example=":raw on", help="show raw tokens instead of readable text",
             complete=lambda s, t: ON_OFF)
    register("use", _use, usage=":use NAME [ARGS] | off [NAME] | list",
             help="add a plugin's logits processor to the chain", complete=_use_complete)
    register("settings", _settings, help="show the current settings and model")
    register("reset", _reset, help="back to the starting settings")
