"""Ship a few epochs of a run in the package: watching a model learn without TensorFlow.

`:compare-models` shows how a model learns when it has the epochs of one run, which only `train
--keep-epochs` makes (TensorFlow, an hour). This takes a run folder's kept epoch exports
(`RUN/epochs/epoch-NNN.onnx`, float32), picks epochs 1, 2, 4, 8 and the last (those kept), and writes
each int8-quantized (`quantize.quantize_int8`, every layer) into the package's `models/epochs/`, with
`epochs.json` beside them: each file's epoch, size and top-1 agreement with its float32 original on
held-out recipes. `:compare-models epochs` names them. The files together stay within `BUDGET`
bytes: the held-out texts the shipped model bundles for `:cells find` are left out of them (a
file's vocabulary, config and training facts stay: each is still a self-describing model).

    python -m recipe_repl.export.ship_epochs runs/shipped --out models/epochs --card models/MODEL_CARD.md \\
        --readme README.md          (or: make epochs RUN=runs/shipped)

With `--card` and `--readme`, the epochs' table in the model card and the README's table of the
lecture's prompt across the epochs are rewritten in place (between their `<!-- epochs… -->` marks).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click

from recipe_repl.base import atomic
from recipe_repl.base.errors import UserError
from recipe_repl.model import contract

WANTED = (1, 2, 4, 8)  # and the last kept epoch
BUDGET = 12_000_000  # bytes, every shipped epoch file together
MANIFEST = "epochs.json"
HELD_OUT = 200  # held-out recipes for the top-1 agreement
CARD_MARKS = ("<!-- epochs:card:begin -->", "<!-- epochs:card:end -->")
README_MARKS = ("<!-- epochs:readme:begin -->", "<!-- epochs:readme:end -->")
LECTURE_PROMPT = "recipe for chocolate ice cream |"
TABLE_ROWS = 5


@dataclass(frozen=True)
class Shipped:
    """One shipped epoch file, as `epochs.json` lists it."""

    file: str
    epoch: int
    bytes: int
    top1_agreement: float  # with the float32 export, on held-out positions
    positions: int  # how many held-out positions that was measured on
    val_loss: float | None = None  # the run's validation loss after this epoch (log.csv), when known


def pick_epochs(kept: Sequence[int], wanted: Sequence[int] = WANTED) -> list[int]:
    """Of the kept epochs, those wanted and the last one, in order."""
    if not kept:
        return []
    return sorted({e for e in wanted if e in kept} | {max(kept)})


def fit_budget(sizes: dict[int, int], budget: int) -> list[int]:
    """The epochs of `sizes` (epoch → bytes) to keep within `budget`: the first and the last always, then
    middle epochs dropped one by one, each time the one closest to its left neighbour in log scale
    (1, 2, 4, 8, 40 → 1, 4, 8, 40 → 1, 4, 40), so that what is left still spans early to late."""
    import math

    chosen = sorted(sizes)
    while len(chosen) > 2 and sum(sizes[e] for e in chosen) > budget:
        gaps = [(math.log2(chosen[k]) - math.log2(chosen[k - 1]), k) for k in range(1, len(chosen) - 1)]
        chosen.pop(min(gaps)[1])
    return chosen


def kept_exports(run_dir: Path) -> dict[int, Path]:
    """The run's kept epoch exports by epoch: `RUN/epochs/epoch-NNN.onnx`."""
    folder = Path(run_dir) / "epochs"
    found = {}
    for f in sorted(folder.glob("epoch-*.onnx")) if folder.is_dir() else []:
        number = f.name.removeprefix("epoch-").removesuffix(".onnx")
        if number.isdigit():
            found[int(number)] = f
    return found


def shippable(float_bytes: bytes) -> bytes:
    """The int8 copy of an exported epoch, without the bundled held-out texts (the shipped model has them)."""
    import onnx
    from recipe_repl.export.quantize import quantize_int8, simplify

    model = onnx.load_from_string(quantize_int8(simplify(float_bytes), "int8"))
    kept = [p for p in model.metadata_props if p.key != contract.META_SAMPLE_TEXTS]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    return bytes(model.SerializeToString())


def ship(exports: dict[int, Path], out_dir: Path, held: list[list[int]], budget: int = BUDGET,
         val_loss: dict[int, float] | None = None, trim: bool = False,
         report: Callable[[str], None] | None = None) -> list[Shipped]:
    """Quantize `exports` (epoch → float32 file) into `out_dir` with their manifest. Over `budget` bytes,
    `trim` drops middle epochs until they fit (`fit_budget`, said through `report`); without it, or when
    the first and last alone do not fit, nothing is written. Epoch files of an earlier shipping that are
    not in this one go."""
    from recipe_repl.export.parity import top1_agreement

    if not exports:
        raise UserError("no epochs to ship: the run has no kept epoch exports (train --keep-epochs)")
    made = {epoch: shippable(path.read_bytes()) for epoch, path in sorted(exports.items())}
    total = sum(len(b) for b in made.values())
    if total > budget and trim:
        keep = fit_budget({e: len(b) for e, b in made.items()}, budget)
        dropped = [e for e in made if e not in keep]
        if dropped and sum(len(made[e]) for e in keep) <= budget and report is not None:
            report(f"{total / 1e6:.2f} MB would pass the {budget / 1e6:g} MB budget: shipping epochs "
                   f"{', '.join(map(str, keep))} (not {', '.join(map(str, dropped))})")
        made = {e: made[e] for e in keep}
        total = sum(len(b) for b in made.values())
    if total > budget:
        sizes = ", ".join(f"epoch {e} {len(b) / 1e6:.2f} MB" for e, b in made.items())
        last = max(made)
        raise UserError(f"the epochs would take {total / 1e6:.2f} MB, over the {budget / 1e6:g} MB budget ({sizes}): "
                        f"ship fewer, e.g. --epochs 1,4,{last}")
    shipped: list[Shipped] = []
    for epoch, int8 in made.items():
        agreement: dict[str, Any] = (top1_agreement(exports[epoch].read_bytes(), int8, held) if held
                                     else {"top1_agreement": float("nan"), "positions": 0})
        shipped.append(Shipped(f"epoch-{epoch:03d}.onnx", epoch, len(int8),
                               float(agreement["top1_agreement"]), int(agreement["positions"]),
                               (val_loss or {}).get(epoch)))
    out_dir.mkdir(parents=True, exist_ok=True)
    for s in shipped:
        atomic.write_bytes(out_dir / s.file, made[s.epoch])
    for stale in out_dir.glob("epoch-*.onnx"):
        if stale.name not in {s.file for s in shipped}:
            stale.unlink()
    atomic.write_text(out_dir / MANIFEST, json.dumps([asdict(s) for s in shipped], indent=2) + "\n")
    return shipped


def read_manifest(out_dir: Path) -> list[Shipped]:
    """The shipped epochs listed in `out_dir/epochs.json` (none when there is no such file)."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return []
    return [Shipped(**row) for row in json.loads(path.read_text(encoding="utf-8"))]


def held_out_ids(float_path: Path, limit: int = HELD_OUT) -> list[list[int]]:
    """Held-out recipes of the model's own training split, as the ids it reads (for the agreement)."""
    from recipe_repl.export.evaluate import target_sequence
    from recipe_repl.train.preprocess import load_split

    from recipe_repl.model.engine import OnnxEngine

    engine = OnnxEngine(float_path, provider="cpu")
    training = engine.info.training
    _, split = load_split(training["data"], training["val_split"], training["seed"])
    seq_len = int(engine.info.config.get("seq_len", 200))
    return [target_sequence(engine.vocab, t, seq_len)[:-1] for t in split.val[:limit]]


def ship_run(run_dir: Path, out_dir: Path, epochs: Sequence[int] | None = None, budget: int = BUDGET,
             report: Callable[[str], None] | None = None) -> list[Shipped]:
    """Ship a run's epochs (`epochs`, else 1, 2, 4, 8 and the last it kept, fewer when they pass the
    budget) into `out_dir`."""
    from recipe_repl.train.rundir import RunDir

    exports = kept_exports(run_dir)
    chosen = pick_epochs(sorted(exports)) if epochs is None else [e for e in epochs if e in exports]
    missing = [e for e in (epochs or []) if e not in exports]
    if missing:
        raise UserError(f"the run kept no export of epoch {', '.join(map(str, missing))} "
                        f"(kept: {', '.join(map(str, sorted(exports))) or 'none'})")
    if not chosen:
        raise UserError(f"no kept epoch exports in {Path(run_dir) / 'epochs'} (train --keep-epochs makes them)")
    val_loss = {int(r["epoch"]): float(r["val_loss"]) for r in RunDir(Path(run_dir)).log_rows() if "val_loss" in r}
    held = held_out_ids(exports[chosen[-1]])
    return ship({e: exports[e] for e in chosen}, Path(out_dir), held, budget, val_loss, trim=epochs is None,
                report=report)


# --- the tables: the model card's and the README's ------------------------------------------------


def card_section(shipped: Sequence[Shipped]) -> str:
    """The model card's table of the shipped epochs (Markdown)."""
    if not shipped:
        return "No epochs are shipped with this model (`make epochs RUN=runs/shipped` ships them)."
    rows = ["Epochs shipped for `:compare-models epochs` (int8, every layer; top-1 agreement with the float32 "
            "export on held-out positions):", "", "| epoch | file | size | val loss | top-1 agreement |",
            "|---:|---|---:|---:|---:|"]
    for s in shipped:
        loss = f"{s.val_loss:.3f}" if s.val_loss is not None else "–"
        rows.append(f"| {s.epoch} | `epochs/{s.file}` | {s.bytes / 1e6:.2f} MB | {loss} | "
                    f"{s.top1_agreement:.2%} of {s.positions:,} |")
    rows += ["", f"{sum(s.bytes for s in shipped) / 1e6:.2f} MB in all."]
    return "\n".join(rows)


def prompt_table(paths: Sequence[Path], prompt: str = LECTURE_PROMPT, rows: int = TABLE_ROWS) -> str:
    """The likeliest next words after `prompt` under each model (its own distribution: temperature 1, no
    processors), one column per epoch: what `:compare-models epochs` shows, as Markdown."""
    from recipe_repl.generate.inspection import model_distribution, next_logits
    from recipe_repl.model.engine import OnnxEngine
    from recipe_repl.views.render import percent, top_ids

    columns = []
    for path in paths:
        engine = OnnxEngine(path, provider="cpu")
        probs = model_distribution(next_logits(engine, engine.vocab.encode(prompt)))
        epoch = engine.info.training.get("checkpoint_epoch") or engine.info.training.get("epochs")
        cells = [f"{engine.vocab.words[i] or '⏹'} {percent(float(probs[i]))}" for i in top_ids(probs, rows)]
        columns.append((f"epoch {epoch}", cells))
    head = "| | " + " | ".join(name for name, _ in columns) + " |"
    lines = [f"After the lecture's `{prompt}`, the model's own next-word probabilities (temperature 1) "
             "after each shipped epoch (`:compare-models epochs`, regenerated by `make epochs`):", "", head,
             "|---:|" + "---|" * len(columns)]
    for r in range(rows):
        lines.append(f"| {r + 1} | " + " | ".join(c[r] if r < len(c) else "" for _, c in columns) + " |")
    return "\n".join(lines)


def replace_between(text: str, marks: tuple[str, str], body: str) -> str:
    """`text` with what lies between the two marks replaced by `body` (a UserError when a mark is missing)."""
    begin, end = marks
    if begin not in text or end not in text:
        raise UserError(f"the marks {begin} … {end} are missing: put them where the table goes")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Where the int8 epoch files go (the package's models/epochs).")
@click.option("--epochs", "epochs", default=None, metavar="E,E,…",
              help="Which kept epochs (default: 1, 2, 4, 8 and the last one kept; middle ones dropped when they "
                   "pass the budget).")
@click.option("--budget-mb", type=float, default=BUDGET / 1e6, show_default=True,
              help="The most all the files may take together.")
@click.option("--card", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Rewrite the epochs' table in this model card (between its epochs:card marks).")
@click.option("--readme", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Rewrite the table of the lecture's prompt across the epochs in this README.")
def main(run_dir: Path, out_dir: Path, epochs: str | None, budget_mb: float, card: Path | None,
         readme: Path | None) -> None:
    """Ship int8 copies of RUN_DIR's kept epochs into --out, with their top-1 agreement with float32."""
    chosen = None
    if epochs:
        try:
            chosen = [int(e) for e in epochs.split(",") if e.strip()]
        except ValueError:
            raise click.BadParameter(f"epochs are numbers, e.g. 1,2,4,8, not {epochs!r}") from None
    try:
        shipped = ship_run(run_dir, out_dir, chosen, int(budget_mb * 1e6), report=lambda m: click.echo(m, err=True))
        for s in shipped:
            click.echo(f"epoch {s.epoch}: {out_dir / s.file} ({s.bytes / 1e6:.2f} MB, top-1 agreement with float32 "
                       f"{s.top1_agreement:.2%})", err=True)
        update_docs(out_dir, shipped, card, readme)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None


def update_docs(out_dir: Path, shipped: Sequence[Shipped], card: Path | None, readme: Path | None) -> None:
    """Rewrite the model card's epochs table and the README's prompt table from the shipped files."""
    if card is not None:
        atomic.write_text(card, replace_between(card.read_text(encoding="utf-8"), CARD_MARKS, card_section(shipped)))
    if readme is not None:
        table = prompt_table([Path(out_dir) / s.file for s in shipped])
        atomic.write_text(readme, replace_between(readme.read_text(encoding="utf-8"), README_MARKS, table))


def manifest_facts(out_dir: Path) -> list[dict[str, Any]]:
    """The shipped epochs as plain data (for the model card's facts)."""
    return [asdict(s) for s in read_manifest(out_dir)]


if __name__ == "__main__":
    main()
