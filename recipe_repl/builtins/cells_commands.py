"""Built-in cell views: `:cells` shows what the LSTM carries from word to word, and finds units that follow
a feature of the text; the built-in features (`paren`, `step`, `number`, `sentence`, `quantity`).

`:cells N` colours each word of the last sample by unit N's activation after it, `:cells find FEATURE`
ranks the units by correlation with a feature, `:cells top` shows the five units that moved most.
Stateful models only: the state after each word comes from stepping the text one word at a time
through `engine.forward` (`recipe_repl.generate.cells`). Works in batch mode too (tables go to stderr).

Where `:cells find` reads its texts, first found first: a FILE named on the line (one text a line);
the held-out recipes the export bundles into the model file (`recipe_repl.sample_texts`); the last
samples. The runtime never reads the training corpus itself (that would import the train package).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from recipe_repl.base.errors import BadValue, UsageError, UserError
from recipe_repl.generate import cells
from recipe_repl.generate.inspection import context_ids
from recipe_repl.generate.loop import encode_prompt
from recipe_repl.plugin.commands import split_args
from recipe_repl.plugin.hookspecs import hookimpl
from recipe_repl.session.session import Session

USAGE = ":cells [c] N [TEXT] | find [c] FEATURE [FILE] | top [c] | features"
MAX_FILE_BYTES = 5_000_000  # texts for `:cells find FILE`: a few thousand recipes at most
MAX_TEXTS = 1000  # texts searched at most (482 validation recipes of the built-in corpus: about 5 s)
TOP_UNITS = 10


def _kind(parts: list[str]) -> tuple[str, list[str]]:
    """An optional leading `h` or `c` (h by default)."""
    if parts and parts[0].lower() in cells.KINDS:
        return parts[0].lower(), parts[1:]
    return "h", parts


def _unit_arg(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise BadValue(f"a unit is a number, not {text!r}") from None


def _cells(session: Session, args: str) -> None:
    parts = args.split()
    if not parts:
        raise UsageError()
    head = parts[0].lower()
    if head == "find":
        _find(session, args.split(None, 1)[1] if len(parts) > 1 else "")
    elif head == "top":
        _top(session, parts[1:])
    elif head == "features":
        _features(session, parts[1:])
    else:
        kind, rest = _kind(parts)
        if not rest:
            raise UsageError("which unit?")
        unit = _unit_arg(rest[0])
        text = args.split(None, 2 if _kind_given(parts) else 1)[-1] if len(rest) > 1 else ""
        _unit(session, kind, unit, text)


def _kind_given(parts: list[str]) -> bool:
    """Whether the first argument names h or c."""
    return bool(parts) and parts[0].lower() in cells.KINDS


# --- :cells N ------------------------------------------------------------------------------------------


def _text_ids(session: Session, text: str, command: str) -> tuple[list[int], str]:
    """Ids to show: TEXT when given, else the last text (the last sample's whole text, or the one :score
    read), numbered as :words numbers it (the stop token has no state after it: it is not shown)."""
    if text:
        return encode_prompt(session.engine, text, session.max_prompt_tokens), "the given text"
    last = session.text_for(command)
    return last.ids(), last.source


def _unit(session: Session, kind: str, unit: int, text: str) -> None:
    from rich.console import Group
    from rich.text import Text

    from recipe_repl.views import cell_view, render

    engine = session.engine
    cells.state_indices(engine)  # a stateless model is told so before anything else
    ids, source = _text_ids(session, text, f"cells {unit}")
    [found] = cells.trace(engine, [ids])
    cells.check_unit(unit, found.units)
    values = found.values(kind)[:, unit]
    scale = cell_view.nice_scale(values, kind)
    lo, hi = int(values.argmin()), int(values.argmax())
    note = (f"unit {unit}: min {values[lo]:+.2f} after “{render.safe(found.words[lo])}” (word {lo + 1}) · "
            f"max {values[hi]:+.2f} after “{render.safe(found.words[hi])}” (word {hi + 1})")
    title = Text(f"unit {unit} of the {cells.KIND_NAMES[kind]} after each word of {source}", style="bold")
    raw = session.settings.raw
    session.frontend.show(Group(title, cell_view.Activations(found.words, values, scale, raw),
                                cell_view.Legend(scale, raw=raw), Text(note, style="dim")))


# --- :cells find ---------------------------------------------------------------------------------------


def _features_table(session: Session) -> dict[str, Any]:
    return dict(session.plugins.features)


def _find(session: Session, args: str) -> None:
    from recipe_repl.views import cell_view

    parts = split_args(args)
    kind, rest = _kind(parts)
    features = _features_table(session)
    if not rest:
        raise UsageError(f"which feature? {', '.join(sorted(features))}")
    if len(rest) > 2:
        raise UsageError("too many arguments")
    name = rest[0].lower()
    spec = features.get(name)
    if spec is None:
        raise BadValue(f"unknown feature {rest[0]!r}: choose {', '.join(sorted(features))}",
                       example=":cells find paren")
    engine = session.engine
    cells.state_indices(engine)
    texts, source = _texts(session, Path(rest[1]).expanduser() if len(rest) > 1 else None)
    traces = cells.trace(engine, texts)
    label = f"{spec.name} (plugin {spec.plugin})" if not spec.plugin.startswith("builtin") else spec.name
    values = [cells.feature_values(label, spec.feature, t.words) for t in traces]
    if len({float(x) for v in values for x in v}) < 2:
        raise UserError(f"the feature {spec.name} has one value at every word of {source}: nothing to correlate "
                        f"with; try texts where it changes (:cells find {spec.name} FILE, one text a line)")
    r = cells.correlations(traces, values, kind)
    words = sum(len(t.words) for t in traces)
    on = sum(int((v != 0).sum()) for v in values)
    ranked = cells.rank_units(r, TOP_UNITS)
    title = f"units of the {cells.KIND_NAMES[kind]} that follow “{spec.name}” ({spec.help or 'a plugin feature'})"
    first = ranked[0][0]
    show = f":cells {'c ' if kind == 'c' else ''}{first}"
    caption = (f"Pearson correlation over {source}: {words:,} words, the feature non-zero at {on:,} · "
               f"{show} shows unit {first} on the last sample, {show} TEXT on any text")
    session.frontend.show(cell_view.ranking_table(ranked, kind, title, caption))


def _texts(session: Session, path: Path | None) -> tuple[list[list[int]], str]:
    """Token ids of the texts to search, and where they come from (in words)."""
    vocab = session.engine.vocab
    if path is not None:
        raw = _read_file(path)[:MAX_TEXTS]
        source = f"{len(raw)} text{'s' if len(raw) != 1 else ''} of {path.name}"
    elif session.engine.info.sample_texts:
        raw = list(session.engine.info.sample_texts)
        what = session.engine.info.sample_source or "held-out recipes"
        source = f"{len(raw)} text{'s' if len(raw) != 1 else ''} bundled with the model ({what})"
    elif session.last_samples:
        ids = [context_ids(session.engine.vocab, s) + s.token_ids for s in session.last_samples]
        ids = [i[:cells.MAX_TEXT_WORDS] for i in ids if i]
        return ids, f"the last {len(ids)} sample{'s' if len(ids) != 1 else ''}"
    else:
        raise UserError("no texts to search: this model bundles none (export it again with this version to "
                        "bundle held-out recipes), so type a prompt first (its samples are searched) or give "
                        "a file of texts, one a line: :cells find FEATURE FILE")
    ids = [vocab.encode(t)[:cells.MAX_TEXT_WORDS] for t in raw[:MAX_TEXTS]]
    ids = [i for i in ids if i]
    if not ids:
        raise UserError(f"no words the model reads in {source}")
    return ids, source


def _read_file(path: Path) -> list[str]:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise UserError(f"{path} is over {MAX_FILE_BYTES // 1_000_000} MB: give a smaller sample of texts")
    texts = [line.strip() for line in data.decode("utf-8", errors="replace").splitlines() if line.strip()]
    if not texts:
        raise UserError(f"no texts in {path}: one text a line")
    return texts


def _features(session: Session, rest: Sequence[str]) -> None:
    from rich.table import Table

    from recipe_repl.views import render

    if rest:
        raise UsageError("no arguments expected after features")
    table = Table(show_edge=False, box=None, pad_edge=False)
    table.add_column("feature", style="cyan")
    table.add_column("is, at each word")
    table.add_column("from", style="dim")
    for name, spec in sorted(_features_table(session).items()):
        owner = "built-in" if spec.plugin.startswith("builtin") else spec.plugin
        table.add_row(render.safe(name), render.safe(spec.help or "-"), render.safe(owner))
    session.frontend.show(table)


# --- :cells top ----------------------------------------------------------------------------------------


def _top(session: Session, rest: list[str]) -> None:
    from rich.console import Group
    from rich.text import Text

    from recipe_repl.views import cell_view

    kind, extra = _kind(rest)
    if extra:
        raise UsageError("too many arguments")
    engine = session.engine
    cells.state_indices(engine)
    ids, source = _text_ids(session, "", "cells top")
    [found] = cells.trace(engine, [ids])
    units = cells.most_changed(found, kind)
    values = found.values(kind)
    scale = cell_view.nice_scale(values[:, units], kind)
    rows = [(f"{kind}{u}", values[:, u], scale) for u in units]
    raw = session.settings.raw
    title = Text(f"the {len(units)} units of the {cells.KIND_NAMES[kind]} that moved most over {source}",
                 style="bold")
    session.frontend.show(Group(title, cell_view.Strip(found.words, rows, raw),
                                cell_view.Legend(scale, f":cells {'c ' if kind == 'c' else ''}N shows one", raw)))


def _complete(session: Session, text: str) -> Iterable[str]:
    words = text.split()
    if words and words[0] == "find":
        return [f"find {name}" for name in sorted(session.plugins.features)]
    return ["find", "top", "features", "c", "h"]


# --- built-in features (registered like any plugin's) --------------------------------------------------


@hookimpl
def register_cell_features(register: Any) -> None:
    """The built-in features of `:cells find`."""
    for name, (feature, help_text) in cells.BUILTIN_FEATURES.items():
        register(name, feature, help=help_text)


@hookimpl
def register_commands(register: Any) -> None:
    """`:cells`."""
    register("cells", _cells, usage=USAGE, example=":cells find paren", complete=_complete,
             help="inside the LSTM: unit N's activation after each word; find units that follow a feature",
             details="`:cells N` colours each word of the last sample by hidden unit N's value after the model "
                     "read it (blue below 0, red above; `:cells N TEXT` any text; `:cells c N` the memory cell). "
                     "`:cells find FEATURE [FILE]` ranks units by correlation with a feature of the text "
                     "(paren, step, number, sentence, quantity, and plugins' features; `:cells features` lists "
                     "them) over the held-out recipes the model bundles, else the last samples, or FILE (one "
                     "text a line). `:cells top` shows the five units that moved most over the last sample "
                     "(the sum of |change| from word to word), each word coloured once per unit. "
                     "Units are numbered from 0. Without colour (or with :raw on) the values are printed. "
                     "Needs a stateful model.")
