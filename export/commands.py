"""`recipe-repl export` and `recipe-repl eval`: click commands. Importing this module does not import TensorFlow."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The .onnx file to write (atomically).")
@click.option("--quantize", type=click.Choice(["int8", "int8-output"]), default=None,
              help="Dynamic int8 quantization: of every layer (int8), or of the output layer only (int8-output: "
                   "most of a step's time at batch 1, with the least change to the perplexity).")
@click.option("--stateless", is_flag=True, help="The lecture's format: tokens → probabilities, no state.")
@click.option("--tolerance", type=float, default=1e-4, show_default=True, help="Max |Δlogits| allowed.")
@click.option("--epoch", type=click.IntRange(min=1), default=None,
              help="Export the checkpoint kept after this epoch (`train --keep-epochs`) instead of the last one.")
@click.option("--quiet", is_flag=True)
@click.option("--verbose", is_flag=True, help="Keep TensorFlow's own log lines (C++ INFO and warnings).")
def export_command(run_dir: Path, out: Path, quantize: str | None, stateless: bool, tolerance: float,
                   epoch: int | None, quiet: bool, verbose: bool) -> None:
    """Export a training run folder to one self-describing ONNX file, checking parity with Keras."""
    from recipe_repl.export.convert import EXTRA_MISSING, export_libs_installed
    from recipe_repl.train.rundir import RunDir
    from recipe_repl.train.tf_env import set_native_logging

    from recipe_repl.base.errors import UserError

    if not export_libs_installed():
        raise UserError(EXTRA_MISSING)
    run = RunDir(run_dir)
    run.require_trained()  # the run folder's own files are checked before TensorFlow starts (seconds)
    run.config()
    run.vocab()
    set_native_logging(verbose)  # before TensorFlow's first import
    from recipe_repl.export.convert import import_export_libs

    import_export_libs(verbose)
    from recipe_repl.export.exporter import export_run

    export_run(run_dir, out, quantize=quantize, stateless=stateless, tolerance=tolerance, quiet=quiet, epoch=epoch)


@click.command("eval")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--data", default=None, help="Corpus spec (default: the one in the model's training metadata).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Held-out recipes scored together (at least 1).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Evaluate at most this many held-out recipes (per corpus; at least 1).")
@click.option("--no-ngram", is_flag=True, help="Skip the Kneser–Ney 3-gram baseline.")
@click.option("--titles", type=click.IntRange(min=0), default=100, show_default=True,
              help="Held-out titles per corpus sampled for the title-word and loop figures (0: no title figures).")
@click.option("--seed", "figure_seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the title derangement and of the samples.")
@click.option("--vocab", type=click.Path(dir_okay=False, path_type=Path), hidden=True,
              help="vocabulary file for a model that carries none")
@click.option("--verbose", is_flag=True, help="Keep TensorFlow's own log lines, as in train and export "
              "(eval itself runs on ONNX Runtime, without TensorFlow).")
def eval_command(model: Path, data: str | None, batch_size: int, limit: int | None, no_ngram: bool,
                 titles: int, figure_seed: int, vocab: Path | None, verbose: bool) -> None:
    """Held-out perplexity and top-1/top-5 accuracy of MODEL.onnx, and of a Kneser–Ney 3-gram baseline;
    and how the model uses its title: title use (body perplexity after another recipe's title over after
    its own, the 3-gram's beside it), title words in samples from held-out titles at T = 1.0, 0.5 and
    0.2 (beside the held-out recipes' own share) and loops (a 4-gram three times or more)."""
    from recipe_repl.train.tf_env import set_native_logging

    set_native_logging(verbose)
    from recipe_repl.export.evaluate import evaluate, format_report

    from recipe_repl.base.sanitize import clean

    report = evaluate(model, data=data, batch_size=batch_size, limit=limit, ngram=not no_ngram, vocab_path=vocab,
                      titles=titles, figure_seed=figure_seed)
    click.echo(clean(format_report(report), keep="\n"))
