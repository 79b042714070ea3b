"""Built-in session commands: :quit/:exit, :help, :model, :provider, :continue, :save, :preset."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from recipe_repl.base import atomic
from recipe_repl.base.errors import BadValue, UsageError, UserError
from recipe_repl.base.sanitize import clean, dumps, has_unsafe
from recipe_repl.generate.loop import StopReason
from recipe_repl.model.engine import PROVIDERS
from recipe_repl.plugin.commands import no_args, one_arg, split_args
from recipe_repl.plugin.hookcall import is_builtin
from recipe_repl.plugin.hookspecs import hookimpl
from recipe_repl.session.session import Session
from recipe_repl.views import heat


def _quit(session: Session, args: str) -> None:
    no_args(args)  # `:quit now` is not worth guessing at: leaving loses the session
    session.quit_requested = True


def _help(session: Session, args: str) -> None:
    from recipe_repl.views.help_view import CommandList

    parts = args.split()
    if len(parts) > 1:
        raise UsageError("too many arguments")
    name = parts[0].lstrip(":").lower() if parts else ""
    if name:
        commands = session.plugins.commands
        found = commands.get(name)
        if found is None:
            close = commands.closest(name)
            if close:
                raise UserError(f"no command :{name} — did you mean :help {close}?")
            raise BadValue(f"no command :{name} (:help alone lists them all)")
        spec = found
        lines = [f"{spec.synopsis} — {spec.help}"]
        if spec.example:
            lines.append(f"e.g. {spec.example}")
        if spec.aliases:
            lines.append("aliases: " + ", ".join(f":{a}" for a in spec.aliases))
        if spec.details:
            lines.append(spec.details)
        if not is_builtin(spec.plugin):
            lines.append(f"from plugin {spec.plugin}")
        for line in lines:
            session.say(line)
        return
    rows = [(spec.synopsis, spec.help) for spec in session.plugins.commands.specs()
            if session.frontend.interactive or not spec.interactive_only]
    session.frontend.show(CommandList(rows, title="commands (anything else is a prompt; :help NAME explains one)"))


def _help_complete(session: Session, text: str) -> Iterable[str]:
    return session.plugins.commands.names()


def _model(session: Session, args: str) -> None:
    if not args:
        info = session.engine.info
        session.say(f"model {info.path} ({info.kind}, vocab {info.vocab_size}, {info.provider})")
        return
    path = Path(os.path.expanduser(args.strip()))
    try:
        engine = session.switch_model(path=path)
    except UserError as exc:
        if path.exists():  # the file is there but is no model: the message says what is wrong with it
            raise
        raise BadValue(str(exc)) from None  # a mistyped path: show one that works
    session.say(f"model {engine.info.path} loaded ({engine.info.kind}, vocab {engine.info.vocab_size}, "
                f"{engine.info.provider})")


def _model_complete(session: Session, text: str) -> Iterable[str]:
    base = Path(os.path.expanduser(text or "."))
    folder = base if text.endswith("/") or not text else base.parent
    try:
        return sorted(str(p) + ("/" if p.is_dir() else "") for p in folder.iterdir()
                      if p.is_dir() or p.suffix == ".onnx")
    except OSError:
        return []


def _provider(session: Session, args: str) -> None:
    word = one_arg(args).lower()
    if word not in PROVIDERS:
        raise UsageError(f"no provider {word!r}")
    engine = session.switch_model(provider=word)
    note = " (no CUDA here: using the CPU)" if word == "auto" and engine.info.provider == "cpu" else ""
    session.say(f"provider {engine.info.provider}{note}")


def _continue(session: Session, args: str) -> None:
    no_args(args)
    samples = session.last_samples
    if not samples:
        raise UserError("nothing to continue yet: type a prompt first")
    resumable = [s for s in samples if s.resume is not None and s.stop_reason != StopReason.STOP_TOKEN]
    if not resumable:
        if any(s.stop_reason == StopReason.NOT_FINITE for s in samples):
            raise UserError("nothing to continue: the last sample ended where the model's numbers were not "
                            "finite (type a new prompt)")
        raise UserError("nothing to continue: the last sample ended at the stop token (type a new prompt)")
    session.run_requests([s.prompt for s in resumable], [s.resume for s in resumable], before=session.last_text)


def _transcript_markdown(session: Session) -> str:
    # Every piece of text from outside goes through `clean`: a Markdown file is read in a terminal too.
    lines = ["# recipe-repl session", ""]
    info = session.engine.info
    lines += [f"Model: `{clean(info.path)}` ({info.kind}, vocabulary {info.vocab_size}, {info.provider})", ""]
    by = str(getattr(session.frontend, "heat", "") or "")  # `:heat on|sampling`: keep the bands as marks
    marks = by in heat.WHICH
    if marks:
        lines += [heat.legend_marks(by), ""]
    for entry in session.transcript:
        if entry.kind == "command":
            lines += [f"`{clean(entry.text)}`", ""]
            continue
        s = entry.settings
        lines += [
            f"## {clean(entry.text)}",
            "",
            f"temperature {s['temperature']}, top-k {s['top_k']}, top-p {s['top_p']}, seed {s['seed']}",
            "",
        ]
        for sample in entry.samples:
            text = sample["text"]
            if marks:
                before, words = sample["prompt_tokens"], sample["tokens"]
                probs = sample["model_probs"] if by == "model" and sample.get("model_probs") else sample["token_probs"]
                text = heat.marked_text(before + words, [None] * len(before) + probs[:len(words)],
                                        raw=bool(s.get("raw")))
            lines += [f"> {clean(text)}", "", f"*{len(sample['tokens'])} tokens, {sample['stop_reason']}*", ""]
    return "\n".join(lines)


def _save(session: Session, args: str) -> None:
    parts = split_args(args)
    if len(parts) != 1:
        raise UsageError("too many arguments (quote a name with spaces)" if parts else "")
    path = Path(os.path.expanduser(parts[0]))
    if path.suffix.lower() == ".json":
        data = {
            "model": session.engine.info.path,
            "entries": [entry.__dict__ for entry in session.transcript],
        }
        text = dumps(data, indent=2) + "\n"
    elif path.suffix.lower() in (".md", ".markdown", ".txt"):
        text = _transcript_markdown(session)
    else:
        raise BadValue(f"save as .md (Markdown) or .json, not {path.name!r}")
    folder = path.parent
    if not folder.is_dir():  # a typo in the folder should not create folders
        raise UserError(f"cannot save to {path}: folder {folder} does not exist" if not folder.exists()
                        else f"cannot save to {path}: {folder} is not a folder")
    if path.is_dir():
        raise UserError(f"cannot save to {path}: it is a folder")
    try:
        atomic.write_text(path, text)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from None
    transcript = session.transcript
    kept = sum(len(e.samples) for e in transcript)
    note = (f" (a session keeps the entries of its last {transcript.limit:,} tokens: {transcript.dropped} "
            "earlier entries are not in the file)" if transcript.dropped else "")
    session.say(f"saved {_count(len(transcript), 'entry', 'entries')} ({_count(kept, 'sample', 'samples')}) "
                f"to {path}{_through_link(path)}{note}")


def _through_link(path: Path) -> str:
    """A note when `path` is a symbolic link: the write went through it to the file it points to."""
    return f" (through the link, to {atomic.resolve(path)})" if path.is_symlink() else ""


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _preset(session: Session, args: str) -> None:
    parts = split_args(args)
    presets = session.config.presets
    if not parts or parts == ["list"]:
        session.say("presets: " + (", ".join(sorted(presets)) or "none yet (:preset save NAME)"))
        return
    if parts[0] == "save":
        if len(parts) != 2:
            raise UsageError("save takes one name")
        if has_unsafe(parts[1]) or not parts[1].strip():
            raise BadValue(f"a preset name cannot hold control, bidi or other invisible characters: "
                           f"{parts[1]!r}", example=":preset save gentle")
        try:
            session.config.save_preset(parts[1], session.settings)
        except OSError as exc:
            raise UserError(f"cannot write {session.config.path}: {exc.strerror}") from None
        session.say(f"preset {parts[1]!r} saved to {session.config.path}{_through_link(session.config.path)}")
        return
    if len(parts) != 1:
        raise UsageError("too many arguments")
    if parts[0] not in presets:
        names = sorted(presets)
        raise BadValue(f"no preset {parts[0]!r} (presets: {', '.join(names) or 'none yet'})",
                       example=f":preset {names[0]}" if names else f":preset save {parts[0]}")
    session.update(session.config.preset(parts[0]))
    session.say(f"preset {parts[0]!r} loaded")


def _preset_complete(session: Session, text: str) -> Iterable[str]:
    return ["save", "list", *sorted(session.config.presets)]


@hookimpl
def register_commands(register: Any) -> None:
    """The session commands."""
    register("quit", _quit, help="leave (Ctrl-D works too)", aliases=("exit", "q"), essential=True)
    register("help", _help, usage=":help [COMMAND]", example=":help temp", help="list commands, or explain one",
             complete=_help_complete, essential=True)
    register("model", _model, usage=":model [PATH]", example=":model mine.onnx", help="show the model, or switch to another .onnx file",
             complete=_model_complete)
    register("provider", _provider, usage=":provider cpu|cuda|auto", example=":provider cpu", help="run the model on the CPU or CUDA",
             complete=lambda s, t: PROVIDERS)
    register("continue", _continue, help="keep generating from where the last sample stopped",
             aliases=("c",))
    register("save", _save, usage=":save FILE.md|FILE.json", example=":save session.md", help="save this session's prompts and samples")
    register("preset", _preset, usage=":preset NAME | save NAME | list",
             help="named settings kept in the config file", complete=_preset_complete)
