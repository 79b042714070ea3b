"""The corpus check (issue 19): words in another script than the corpus's, recipes that open alike, and
training's cleaning of foreign recipes (counted as skipped)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from recipe_repl.train import corpus_check
from recipe_repl.train.config import TrainConfig
from recipe_repl.train.corpus import load_corpus
from recipe_repl.train.data_commands import data_command
from recipe_repl.train.preprocess import load_split

from recipe_repl.base.errors import UserError

RECIPES = [
    "Recipe for tea | Step 1. Boil the water. Step 2. Add the tea.",
    "Recipe for coffee | Step 1. Boil the water. Step 2. Add the coffee.",
    "Recipe for soup | Step 1. Boil the water. Step 2. Add перемешайте все ингредиенты, потом минут.",
    "Recipe for toast | Toast the bread, then butter it (TikTok style).",
]


@pytest.fixture()
def text_corpus(tmp_path: Path) -> Path:
    path = tmp_path / "recipes.txt"
    path.write_text("\n".join(RECIPES) + "\n", encoding="utf-8")
    return path


def test_script_of_a_word():
    assert corpus_check.script_of("tomato") == "LATIN"
    assert corpus_check.script_of("crème") == "LATIN"
    assert corpus_check.script_of("минут") == "CYRILLIC"
    assert corpus_check.script_of("2x2") is None and corpus_check.script_of("ºC") is None  # one letter: no script
    assert corpus_check.script_of("киндeр") == "CYRILLIC"  # its first letter decides


def test_check_finds_the_foreign_recipe_and_the_template(text_corpus: Path):
    [report] = corpus_check.check(load_corpus(f"text:{text_corpus}"))
    assert report.script == "LATIN" and report.recipes == 4
    assert report.foreign_recipes == 1  # the Russian words; "TikTok" is Latin
    assert report.foreign_words["перемешайте"] == 1 and sum(report.foreign_words.values()) == 5
    assert report.openings[0] == ("Step 1. Boil the water.", 3)
    assert report.top_opening_share == 0.75
    text = corpus_check.format_check([report])
    assert "5 words in another script" in text and "1 recipes have more than 5%" in text
    assert "75.0% open with “Step 1. Boil the water.”" in text


def test_a_russian_corpus_keeps_its_latin_brand_names():
    reports = corpus_check.check(load_corpus("builtin:ru"))
    assert reports[0].script == "CYRILLIC" and reports[0].foreign_recipes == 0
    assert reports[0].foreign_words["TikTok"] > 0  # flagged, but too few to make a recipe foreign


def test_training_drops_the_foreign_recipes_and_says_so(text_corpus: Path):
    corpus, split = load_split(f"text:{text_corpus}", 0.25, 42, clean=True)
    assert corpus.used == 3 and corpus.skipped["other script"] == 1
    assert "skipped 1 (1 other script)" in corpus.report()
    assert not any("минут" in t for t in split.train + split.val)
    kept, _ = load_split(f"text:{text_corpus}", 0.25, 42, clean=False)
    assert kept.used == 4


def test_the_builtin_corpus_loses_its_18_russian_recipes():
    corpus, _ = load_split("builtin+wikibooks", 0.1, 42, clean=True)
    assert [(m.name, m.used, m.skipped["other script"]) for m in corpus.members()] == [
        ("builtin:en", 4801, 18), ("wikibooks", 3129, 0)]
    assert not any(corpus_check.foreign_words(t, "LATIN") for t in corpus.texts if "минут" in t)


def test_runs_from_before_the_check_did_not_clean():
    assert TrainConfig().clean is True
    assert TrainConfig.from_dict({"data": "builtin"}).clean is False  # an old run's config.json has no "clean"
    assert TrainConfig.from_dict({"clean": True}).clean is True


def test_data_check_command_and_listing(text_corpus: Path):
    r = CliRunner().invoke(data_command, ["check", f"text:{text_corpus}", "--top", "1"])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0].startswith("text:recipes.txt: 4 recipes in latin script; 5 words")
    assert len(r.stdout.splitlines()) == 2
    r = CliRunner().invoke(data_command, ["check", f"text:{text_corpus.parent / 'missing.txt'}"])
    assert isinstance(r.exception, UserError) and "not found" in str(r.exception)
    listing = CliRunner().invoke(data_command, []).stdout
    after = listing.split("\n\n", 1)[1]
    assert after.startswith("check (words in another script")
    assert "builtin:en: 4,819 recipes in latin script; 234 words in another script" in after
    assert "18 recipes have more than 5% of their words so: training drops them" in after
    assert "14.8% open with “Step 1. Prepare all ingredients:”" in after
