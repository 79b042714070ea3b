"""`recipe-repl data`: list the corpora, show a few recipes as the model sees them, and fetch the
lecture's Epicurious set. Importing this module imports nothing heavy (click only)."""

from __future__ import annotations

import click


@click.group("data", invoke_without_command=True)
@click.pass_context
def data_command(ctx: click.Context) -> None:
    """List the corpora --data can train on: recipes, words, licence and where each comes from.

    Words are counted as the model counts them (a punctuation mark is a word).
    """
    if ctx.invoked_subcommand is not None:
        return
    from recipe_repl.train.datasets import format_rows, survey

    from recipe_repl.base.sanitize import clean

    click.echo(clean(format_rows(survey()), keep="\n"))  # paths of data folders: untrusted like any path


@data_command.command("show")
@click.argument("name")
@click.option("-n", "count", type=int, default=3, show_default=True, help="How many recipes.")
@click.option("--seed", type=int, default=None, help="Draw the recipes at random with this seed (default: the first N).")
def show_command(name: str, count: int, seed: int | None) -> None:
    """Print a few recipes of corpus NAME (any --data spec) as the model sees them: punctuation padded,
    lower-cased as in training."""
    from recipe_repl.train.datasets import preview

    from recipe_repl.base.sanitize import clean as safe  # no rich needed for plain lines

    corpus, texts = preview(name, count, seed)
    click.echo(f"{safe(corpus.name)}: {len(texts)} of {corpus.used:,} recipes, as the model sees them", err=True)
    for i, text in enumerate(texts):
        if i:
            click.echo()
        click.echo(safe(text))


@data_command.command("check")
@click.argument("name")
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True,
              help="How many of the commonest openings to show.")
def check_command(name: str, top: int) -> None:
    """Check corpus NAME (any --data spec): words in another script than the corpus's own (training
    drops the recipes mostly so), and the share of recipes that open with the same five words."""
    from recipe_repl.train.corpus import load_corpus
    from recipe_repl.train.corpus_check import check, format_check

    from recipe_repl.base.sanitize import clean

    click.echo(clean(format_check(check(load_corpus(name), top=top)), keep="\n"))


@data_command.command("epicurious")
def epicurious_command() -> None:
    """Download the lecture's Epicurious recipes from Kaggle (needs the 'kaggle' extra and Kaggle
    access), check them and store them so that --data epicurious works without a path."""
    from recipe_repl.train import epicurious

    click.echo(f"downloading {epicurious.FILE_NAME} of {epicurious.KAGGLE_HANDLE} from Kaggle ...", err=True)
    # looked up at call time, so that tests can put their own download function in its place
    path, usable = epicurious.fetch(download=epicurious.kaggle_download)
    click.echo(f"stored {usable:,} usable recipes in {path}; train on them with --data epicurious", err=True)
