"""`train --keep-epochs K|LIST`: every K-th epoch, or a list such as 1,2,4,8,last (the shipped run's)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from recipe_repl.train.commands import train_command
from recipe_repl.train.keep_epochs import KeepEpochs

from recipe_repl.base.errors import UserError


def test_every_kth_epoch():
    keep = KeepEpochs.parse("3")
    assert [e for e in range(1, 10) if keep.keeps(e, 9)] == [3, 6, 9]
    assert [e for e in range(1, 4) if KeepEpochs.parse("1").keeps(e, 3)] == [1, 2, 3]


def test_a_list_with_the_last_epoch():
    keep = KeepEpochs.parse("1, 2,4,8,last")
    assert [e for e in range(1, 31) if keep.keeps(e, 30)] == [1, 2, 4, 8, 30]
    assert [e for e in range(1, 4) if KeepEpochs.parse("last").keeps(e, 3)] == [3]
    assert [e for e in range(1, 9) if KeepEpochs.parse("2,5").keeps(e, 8)] == [2, 5]


@pytest.mark.parametrize("bad", ["0", "x", "1,0", "1,,two", ""])
def test_bad_lists_are_one_line(bad: str):
    with pytest.raises(UserError, match="--keep-epochs takes K"):
        KeepEpochs.parse(bad)
    result = CliRunner().invoke(train_command, ["--out", "unused", f"--keep-epochs={bad}"])
    assert result.exit_code == 2 and "Invalid value for '--keep-epochs'" in result.output
