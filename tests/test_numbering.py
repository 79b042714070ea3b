"""One word numbering: word N is the N-th token of the whole text, the same in :words, :why, :branch, :back,
:score and :cells (issue 20 §2)."""

from __future__ import annotations

import re

import pytest

from recipe_repl.base.errors import BadValue, UserError
from recipe_repl.base.settings import Settings
from recipe_repl.generate.numbering import STOP_WORD, NumberedText, Origin, word_index
from recipe_repl.generate.scoring import score_text
from recipe_repl.model.vocab import detokenize
from recipe_repl.views.render import percent
from tests.helpers import lines, run_script


def flat(text: str) -> str:
    """Rendered output with its line breaks and runs of spaces folded (messages wrap at 80 columns)."""
    return " ".join(text.split())


def test_word_index_counts_from_one_and_from_the_end() -> None:
    assert [word_index(t, 5, ":why") for t in ("1", "5", "-1", "-5")] == [0, 4, 4, 0]
    assert word_index("2", 5, ":why", predicted=True) == 1
    with pytest.raises(BadValue, match="word 1 has no prediction: nothing precedes it"):
        word_index("1", 5, ":why", predicted=True)
    with pytest.raises(BadValue, match="word 1 has no prediction"):
        word_index("-5", 5, ":why", predicted=True)
    with pytest.raises(BadValue, match=r"has 5 words: choose 2 to 5, or -1 to -4 from the end"):
        word_index("6", 5, ":why", predicted=True)
    with pytest.raises(BadValue, match="takes a word number"):
        word_index("x", 5, ":why")
    with pytest.raises(UserError, match="word 1 has no prediction"):
        word_index("1", 1, ":why", predicted=True)


def test_a_sample_that_ended_on_the_stop_token_counts_it_last(random_model, plugins):
    run = run_script(random_model, plugins, lines(":max 30", "recipe for roast", ":words"), settings=Settings(seed=3))
    text = run.session.last_text
    assert text.ends_on_stop  # seed 3 ends on the stop token with the random model
    sample = run.session.last_samples[0]
    assert len(text) == len(sample.prompt_words) + len(sample.token_ids) + 1
    assert text.words[-1].token == STOP_WORD and text.words[-1].prob == sample.stop_prob
    model = text.model_probs(run.session.engine)
    out = flat(run.out)
    assert f"{len(text)} {STOP_WORD} {percent(model[-1])}" in out  # ⏹ has its number in :words
    assert "1 recipe —" in out  # word 1 has no prediction


def test_words_lists_every_word_with_its_number_and_model_probability(random_model, plugins):
    run = run_script(random_model, plugins, lines(":max 6", ":temp 0.5", "recipe for roast", ":words"))
    text = run.session.last_text
    model = text.model_probs(run.session.engine)
    out = flat(run.out.split("word by word")[1])
    for k, word in enumerate(text.words):
        assert f"{k + 1} {word.token} {percent(model[k]) if k else '—'}" in out
    assert [w.origin for w in text.words[:3]] == [Origin.PROMPT] * 3
    assert {w.origin for w in text.words[3:]} == {Origin.DRAWN}
    # the model's probabilities, not the sampler's at T = 0.5
    scored = score_text(run.session.engine, " ".join(w.token for w in text.words if not w.is_stop), 10_000)
    assert model[1:len(scored.probs)] == pytest.approx(scored.probs[1:], rel=1e-6)


def test_word_n_is_the_same_word_in_why_branch_score_and_cells(random_model, plugins):
    first = run_script(random_model, plugins, lines(":seed 4", ":max 8", "recipe for roast chicken"))
    text = first.session.last_text
    tokens = [w.token for w in text.words if not w.is_stop]
    readable = " ".join(tokens)
    for n in (2, 4, 6, len(tokens)):
        word = tokens[n - 1]
        run = run_script(random_model, plugins, lines(
            ":seed 4", ":max 8", "recipe for roast chicken", f":why {n}", f":branch {n} salt",
            f":score {readable}", f":why {n}", ":cells 0"))
        out = flat(run.out)
        before = flat(detokenize(tokens[:n - 1], capitalize=False))
        # :why N: the table before word N, with word N marked
        whys = re.findall(r"next word after “…?(.*?)” \(word (\d+) of", out)
        assert whys[0][1] == str(n) and before.endswith(whys[0][0])
        # :branch N: word N is the one replaced
        assert f"branch at word {n}: word {n} “salt”" in out and f"instead of “{word}”" in out
        # :score reads the same words: its word N is the same word, and :why N there too
        scored = run.session.last_text
        assert scored.tokens()[n - 1] == word and whys[-1][1] == str(n)
        # :cells numbers the same words (its note names the word after which unit 0 peaks)
        lo_word, lo_n = re.search(r"min [-+][\d.]+ after “(.*?)” \(word (\d+)\)", out).groups()
        assert scored.tokens()[int(lo_n) - 1] == lo_word


def test_branch_numbering_goes_on_over_the_whole_new_text(random_model, plugins):
    run = run_script(random_model, plugins, lines(":seed 3", ":max 5", "recipe for roast", ":branch 5 salt",
                                                  ":branch 6 pepper", ":words"))
    text = run.session.last_text
    assert text.tokens()[4:6] == ["salt", "pepper"]
    assert [w.origin for w in text.words[4:6]] == [Origin.FORCED, Origin.FORCED]
    assert "branch at word 6: word 6 “pepper”" in flat(run.out)


def test_back_and_continue_keep_the_numbering(random_model, plugins):
    run = run_script(random_model, plugins, lines(":seed 6", ":max 6", "recipe for roast", ":back 2", ":continue",
                                                  ":words"))
    text = run.session.last_text
    assert len(text) >= 3 + 4 and [w.origin for w in text.words[:3]] == [Origin.PROMPT] * 3
    assert {w.origin for w in text.words[3:]} == {Origin.DRAWN}  # the kept words stay drawn, not prompt


def test_score_makes_the_scored_text_the_last_text(random_model, plugins):
    run = run_script(random_model, plugins, lines(":score mix salt and pepper", ":words", ":why -1", ":back 1",
                                                  ":continue"))
    out = flat(run.out)
    assert "the scored text, word by word" in out
    assert "(word 5 of 5: read; the model gave it" in out  # ⏹ is word 5 of "mix salt and pepper"
    assert "back 1 word" in out and "tokens" in out  # :continue went on from the scored text
    assert isinstance(run.session.last_text, NumberedText)
