"""Why does the model ignore its title? Short training runs, each with its title-use figure (issue 19 §1).

Each run trains recipe-repl's own loop (`recipe_repl.train.loop.train`) on a corpus (or a seeded
subset of one, written to a text file, one recipe a line) and measures, after every epoch, on the
held-out recipes of that run: the validation perplexity and the title use (body perplexity after a
deranged title over after the own title), with the Keras model behind the runtime's engine
interface, so no export is needed. The figures go to stdout as one JSON line per epoch.

    .venv/bin/python benchmarks/title_experiments.py --data builtin+wikibooks --recipes 2000 \
        --epochs 6 -- --units 256 --embedding-dim 128 --vocab-size 5000 --batch-size 32 --learning-rate 5e-3
    .venv/bin/python benchmarks/title_experiments.py --synthetic --epochs 4 -- --units 64 --embedding-dim 32

`--synthetic` trains on a made-up copy task instead: "Recipe for X Y | …" where the body repeats the
title's two words among filler words. A data path that carries the title lets a small LSTM learn it
(title use far above 1); a defect in alignment, truncation, bucketing or masking would not.

Everything after `--` is passed to `recipe-repl train` as flags (`--units 256` …).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def synthetic_corpus(n: int, seed: int, items: int = 400, filler: int = 150, length: int = 40) -> list[str]:
    """The copy task: "Recipe for X Y | f f X f … Y f …", X and Y drawn from `items` made-up words."""
    import numpy as np

    rng = np.random.default_rng(seed)
    things = [f"item{i}" for i in range(items)]
    fill = [f"word{i}" for i in range(filler)]
    texts = []
    for _ in range(n):
        x, y = rng.choice(things, 2, replace=False)
        body = list(rng.choice(fill, length))
        for word in (x, y, x, y):  # each title word twice, at random places
            body.insert(int(rng.integers(0, len(body) + 1)), str(word))
        texts.append(f"Recipe for {x} {y} | " + " ".join(body) + " .")
    return texts


def subset_file(spec: str, recipes: int, seed: int, folder: Path) -> str:
    """A `text:` corpus of `recipes` recipes drawn with `seed` from every member of `spec` in proportion."""
    import numpy as np
    from recipe_repl.train.corpus import load_corpus

    corpus = load_corpus(spec)
    share = recipes / corpus.used
    specs = []
    for member in corpus.members():
        k = max(2, round(len(member.texts) * share))
        idx = sorted(np.random.default_rng(seed).choice(len(member.texts), min(k, len(member.texts)),
                                                        replace=False).tolist())
        path = folder / f"{member.name.replace(':', '-')}.txt"
        path.write_text("\n".join(member.texts[i].replace("\n", " ") for i in idx) + "\n", encoding="utf-8")
        specs.append(f"text:{path}")
    return "+".join(specs)


def parse_train_flags(flags: list[str]) -> dict[str, Any]:
    """`--units 256 --lr-schedule cosine …` as TrainConfig fields (the train command's own parser)."""
    from recipe_repl.train.commands import train_command

    ctx = train_command.make_context("train", [*flags, "--out", "unused"], resilient_parsing=False)
    params = dict(ctx.params)
    out = {k: v for k, v in params.items() if k in _config_fields() and v is not None}
    out["mask"] = not params.get("no_mask", False)
    out["bucketing"] = not params.get("no_bucketing", False)
    out["clean"] = not params.get("no_clean", False)
    return out


def _config_fields() -> set[str]:
    from dataclasses import fields

    from recipe_repl.train.config import TrainConfig

    return {f.name for f in fields(TrainConfig)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="builtin+wikibooks")
    ap.add_argument("--recipes", type=int, default=None, help="a seeded subset of this many recipes")
    ap.add_argument("--synthetic", type=int, nargs="?", const=3000, default=None, metavar="N",
                    help="train on N synthetic copy-task recipes instead (default 3000)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--label", default="")
    ap.add_argument("--samples", action="store_true", help="after the last epoch, title words and loops in samples")
    ap.add_argument("rest", nargs=argparse.REMAINDER, help="-- then `recipe-repl train` flags")
    args = ap.parse_args()
    flags = args.rest[1:] if args.rest[:1] == ["--"] else args.rest

    from recipe_repl.train.tf_env import import_quietly, prefer_onednn

    prefer_onednn()
    import_quietly()
    from recipe_repl.export import figures
    from recipe_repl.train.callbacks import Callback, keras_engine
    from recipe_repl.train.config import TrainConfig
    from recipe_repl.train.loop import train
    from recipe_repl.train.preprocess import load_split

    tmp = Path(tempfile.mkdtemp(prefix="title-exp-"))
    if args.synthetic:
        path = tmp / "synthetic.txt"
        path.write_text("\n".join(synthetic_corpus(args.synthetic, args.seed)) + "\n", encoding="utf-8")
        spec = f"text:{path}"
    elif args.recipes:
        spec = subset_file(args.data, args.recipes, args.seed, tmp)
    else:
        spec = args.data
    cfg = TrainConfig(**({"data": spec, "epochs": args.epochs, "seed": args.seed, "sample_every": 0}
                         | parse_train_flags(flags)))
    cfg.data, cfg.epochs = spec, args.epochs
    _, split = load_split(spec, cfg.val_split, cfg.seed)
    t_start = time.perf_counter()

    class Monitor(Callback):
        """After each epoch: title use per corpus on its held-out recipes, with the model in training."""

        def set_model(self, model: Any, vocab: Any) -> None:
            self.engine = keras_engine(model, vocab)

        def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
            row: dict[str, Any] = {"label": args.label, "epoch": epoch, "val_loss": round(logs["val_loss"], 4),
                                   "val_ppl": round(logs["val_perplexity"], 3),
                                   "train_s": round(logs["seconds"], 1),
                                   "wall_s": round(time.perf_counter() - t_start, 1)}
            for name, (_, val) in split.per_corpus.items():
                use = figures.title_use(self.engine, val, cfg.seq_len, seed=0, batch_size=64)
                row[f"title_use[{Path(name).stem}]"] = round(use.ratio, 4)
                words = figures.title_word_use(self.engine, val, cfg.seq_len, seed=0, batch_size=64)
                row[f"title_word_use[{Path(name).stem}]"] = round(words.ratio, 3)
            if args.samples and epoch == cfg.epochs:
                for name, (_, val) in split.per_corpus.items():
                    rep = figures.sample_figures(self.engine, figures.pick_titles(val, 100, 0), seed=0,
                                                 temperatures=(0.5, 0.2), batch_size=100)
                    key = Path(name).stem
                    row[f"data_title[{key}]"] = round(rep.data_title_share, 3)
                    for f in rep.per_temperature:
                        row[f"title@{f.temperature:g}[{key}]"] = round(f.title_share, 3)
                        row[f"loops@{f.temperature:g}[{key}]"] = round(f.loop_share, 3)
            print(json.dumps(row), flush=True)

    log = io.StringIO()
    print(json.dumps({"label": args.label, "config": json.loads(cfg.to_json()),
                      "split": split.counts()}), flush=True)
    train(cfg, tmp / "run", quiet=True, stream=log, extra_callbacks=[Monitor()])


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
