"""`recipe-repl train`: a click command. Importing this module does not import TensorFlow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from recipe_repl.train.callbacks import DEFAULT_PROBE, Callback, ProbePrinter
from recipe_repl.train.config import TrainConfig
from recipe_repl.train.keep_epochs import KeepEpochs

_D = TrainConfig()


class _KeepEpochsParam(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click (8.1 is allowed)
    """`--keep-epochs K` or `--keep-epochs 1,2,4,8,last`, checked by click (exit status 2 when bad)."""

    name = "K|LIST"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> KeepEpochs:
        from recipe_repl.base.errors import UserError

        if isinstance(value, KeepEpochs):
            return value
        try:
            return KeepEpochs.parse(str(value))
        except UserError as e:
            self.fail(str(e), param, ctx)


@click.command("train")
@click.option("--data", default=_D.data, show_default=True,
              help="builtin, builtin:ru, wikibooks, epicurious (after `recipe-repl data epicurious`), epicurious:PATH, "
                   "text:PATH (one recipe a line), jsonl:PATH (a 'text' field); join several with +.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run folder: checkpoint, vocabulary, config, log, loss curve.")
@click.option("--vocab-size", type=int, default=_D.vocab_size, show_default=True)
@click.option("--embedding-dim", type=int, default=_D.embedding_dim, show_default=True)
@click.option("--units", type=int, default=_D.units, show_default=True)
@click.option("--seq-len", type=int, default=_D.seq_len, show_default=True)
@click.option("--batch-size", type=int, default=_D.batch_size, show_default=True)
@click.option("--epochs", type=int, default=_D.epochs, show_default=True)
@click.option("--seed", type=int, default=_D.seed, show_default=True)
@click.option("--val-split", type=float, default=_D.val_split, show_default=True)
@click.option("--learning-rate", type=float, default=_D.learning_rate, show_default=True)
@click.option("--lr-schedule", type=click.Choice(["constant", "cosine"]), default=_D.lr_schedule,
              show_default=True, help="cosine: decay the learning rate per epoch to 5% of it by the last epoch.")
@click.option("--no-mask", is_flag=True, help="Count padding after the stop token in the loss (the lecture).")
@click.option("--no-bucketing", is_flag=True, help="Fixed seq_len batches instead of length buckets.")
@click.option("--no-clean", is_flag=True,
              help="Keep recipes mostly in another script than their corpus (dropped by default; "
                   "`recipe-repl data check NAME` lists them).")
@click.option("--dropout", type=float, default=_D.dropout, show_default=True)
@click.option("--word-dropout", type=float, default=_D.word_dropout, show_default=True,
              help="Each input word of a recipe's body (after the title's |) is read as [UNK] with this "
                   "probability while training, so the model leans on the title more (0 = off).")
@click.option("--tie-embeddings/--no-tie-embeddings", default=_D.tie_embeddings, show_default=True,
              help="Output layer = the embedding table (through a projection when --units differs from "
                   "--embedding-dim); the export folds it into the usual Dense layer.")
@click.option("--sampled-softmax", type=int, default=_D.sampled_softmax, show_default=True, metavar="N",
              help="Train on a sampled softmax over N words instead of the whole vocabulary (0 = off); "
                   "validation, export and eval always use the full softmax.")
@click.option("--lowercase", type=click.Choice(["auto", "ascii", "unicode"]), default="auto", show_default=True,
              help="ascii = tf.strings.lower; unicode lowers in Python first (auto: unicode for builtin:ru).")
@click.option("--mixed-precision", is_flag=True, help="bfloat16 compute on CPU, float16 on GPU.")
@click.option("--jit-compile", is_flag=True, help="XLA-compile the train step.")
@click.option("--strategy", type=click.Choice(["default", "mirrored", "multi-worker"]), default="default",
              show_default=True)
@click.option("--resume", is_flag=True,
              help="Continue the run in --out after its last epoch, with its settings (only --epochs may change).")
@click.option("--fresh", is_flag=True,
              help="Start over, replacing a run already in --out (kept until the new run's first checkpoint).")
@click.option("--keep-epochs", type=_KeepEpochsParam(), is_flag=False, flag_value="1", default=None,
              metavar="[K|LIST]",
              help="After every K-th epoch (K = 1 when left out), or after the epochs of a list such as "
                   "1,2,4,8,last, keep the checkpoint and export it, parity-checked, to RUN/epochs/epoch-NNN.onnx "
                   "(for :compare-models and `export --epoch`).")
@click.option("--probe", default=DEFAULT_PROBE, show_default=True,
              help="Each epoch, the likeliest next words after this prompt, beside the sample.")
@click.option("--no-probe", is_flag=True, help="No per-epoch probe line.")
@click.option("--quiet", is_flag=True, help="No progress, samples or probe.")
@click.option("--verbose", is_flag=True, help="Keep TensorFlow's own log lines (C++ INFO and warnings).")
@click.pass_context
def train_command(ctx: click.Context, /, out: Path, no_mask: bool, no_bucketing: bool, no_clean: bool,
                  resume: bool, fresh: bool,
                  keep_epochs: KeepEpochs | None, probe: str, no_probe: bool, quiet: bool, verbose: bool, **kw: Any) -> None:
    """Train the recipe LSTM (Keras) into a run folder that `recipe-repl export` turns into ONNX."""
    from recipe_repl.train.tf_env import prefer_onednn, set_native_logging

    set_native_logging(verbose)  # before TensorFlow's first import
    prefer_onednn()
    from recipe_repl.train.loop import import_tensorflow

    from recipe_repl.base.errors import UserError

    if fresh and resume:
        raise UserError("--fresh and --resume contradict each other; pick one")

    cfg = TrainConfig(mask=not no_mask, bucketing=not no_bucketing, clean=not no_clean, **kw).validate(flags=True)
    if resume:
        _check_resume_flags(ctx, cfg, out)
    tf, _ = import_tensorflow(verbose)  # a UserError naming the extra when TensorFlow is missing
    from recipe_repl.train import devices
    from recipe_repl.train.loop import train

    found = devices.detect(tf)
    if not quiet:
        click.echo(found.line(kw["strategy"]), err=True)
    if found.warning():
        click.echo(found.warning(), err=True)

    extra: list[Callback] = [] if quiet or no_probe or not probe.strip() else [ProbePrinter(probe)]
    if keep_epochs:
        extra.append(_epoch_exporter(out, keep_epochs, quiet))
    result = train(cfg, out, resume=resume, quiet=quiet, fresh=fresh, extra_callbacks=extra)
    if result.history:
        last = result.history[-1]
        click.echo(f"trained {last['epoch']} epochs: loss {last['loss']:.4f}, val_loss {last['val_loss']:.4f}, "
                   f"val perplexity {last['val_perplexity']:.1f}; run folder {out}", err=True)


def _epoch_exporter(out: Path, every: KeepEpochs, quiet: bool) -> Callback:
    """`--keep-epochs`: export/ sits above train/ in the layering, so its callback is looked up by name
    (as the CLI finds the train and export commands) rather than imported."""
    import importlib

    importlib.import_module("recipe_repl.export.convert").import_export_libs()  # tf2onnx missing: one line now
    exporter: Callback = importlib.import_module("recipe_repl.export.epochs").EpochExporter(out, every, quiet=quiet)
    return exporter


def _check_resume_flags(ctx: click.Context, cfg: TrainConfig, out: Path) -> None:
    """A resumed run keeps its own settings (only --epochs may change): flags that say otherwise are an error."""
    from recipe_repl.train.rundir import RunDir

    from recipe_repl.base.errors import UserError

    run = RunDir(out)
    if not run.config_file.exists():
        return  # train() says there is nothing to resume
    saved = run.config()
    field_of = {"no_mask": "mask", "no_bucketing": "bucketing", "no_clean": "clean"}
    differ = []
    for param in ctx.command.params:
        name = param.name or ""
        field = field_of.get(name, name)
        if field == "epochs" or not hasattr(cfg, field):
            continue
        if ctx.get_parameter_source(name) is click.core.ParameterSource.DEFAULT:
            continue
        if getattr(cfg, field) != getattr(saved, field):
            differ.append(f"{param.opts[0]} (the run has {field} = {getattr(saved, field)!r})")
    if differ:
        raise UserError(f"--resume keeps the run's own settings ({run.config_file}); these flags differ: "
                        f"{', '.join(differ)}. Drop them, or start over with --fresh")
