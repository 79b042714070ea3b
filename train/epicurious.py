"""The lecture's Epicurious data set in one command: download it from Kaggle (`kagglehub`, the `kaggle`
extra), check it is the expected `full_format_recipes.json`, and store it in the user's data folder so
that `--data epicurious` works without a path.

Nothing here runs at import time and nothing imports kagglehub until a download is asked for; the
download function is a parameter, so tests pass their own and never touch the network.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recipe_repl.base.errors import UserError

APP = "recipe-repl"
KAGGLE_HANDLE = "hugodarwood/epirecipes"
KAGGLE_URL = "https://www.kaggle.com/datasets/hugodarwood/epirecipes"
FILE_NAME = "full_format_recipes.json"
MAX_BYTES = 256 * 1024 * 1024  # the real file is about 34 MB; anything far larger is not it
MANUAL = f"or download {FILE_NAME} from {KAGGLE_URL} and pass --data epicurious:PATH"


@dataclass(frozen=True)
class Expected:
    """What the real file holds: its record count, and how many records the corpus loader can use."""

    records: int = 20_130
    usable: int = 20_111


EXPECTED = Expected()


def data_dir() -> Path:
    """`$XDG_DATA_HOME/recipe-repl` when XDG_DATA_HOME is set, else platformdirs' user data folder
    (`~/.local/share/recipe-repl` on Linux)."""
    if os.environ.get("XDG_DATA_HOME"):
        return Path(os.environ["XDG_DATA_HOME"]) / APP
    import platformdirs

    return platformdirs.user_data_path(APP)


def stored_path() -> Path:
    """Where `recipe-repl data epicurious` keeps the file (it may not exist yet)."""
    return data_dir() / FILE_NAME


def require_stored() -> Path:
    """The stored file, or a UserError saying how to get it."""
    path = stored_path()
    if not path.is_file():
        raise UserError(f"the Epicurious data is not downloaded yet: run `recipe-repl data epicurious`, {MANUAL}")
    return path


def check_file(path: Path, expected: Expected = EXPECTED) -> int:
    """Check that `path` is the expected `full_format_recipes.json`; return its usable record count.

    A damaged or different file raises a UserError of one line.
    """
    from recipe_repl.train.corpus import load_epicurious

    try:
        size = path.stat().st_size
    except OSError as e:
        raise UserError(f"cannot read the downloaded file {path}: {e.strerror}") from None
    if size > MAX_BYTES:
        raise UserError(f"{path} is {size:,} bytes, far larger than {FILE_NAME} (about 34 MB): not the expected file")
    try:
        corpus = load_epicurious(path)
    except UserError as e:
        raise UserError(f"the downloaded file is not the expected {FILE_NAME}: {e}") from None
    if corpus.read != expected.records or corpus.used != expected.usable:
        raise UserError(
            f"the downloaded file is not the expected {FILE_NAME}: {corpus.read:,} records of which "
            f"{corpus.used:,} have a title and directions (expected {expected.records:,} and "
            f"{expected.usable:,})")
    return corpus.used


class DownloadProblem(Exception):
    """Why a download failed, as one line naming what is missing (the extra, the network, credentials)."""


def kaggle_download() -> Path:
    """Download `full_format_recipes.json` with kagglehub (into kagglehub's cache) and return its path.

    Raises DownloadProblem with one line when the extra, the network or the credentials are missing.
    """
    try:
        import kagglehub
    except ImportError:
        raise DownloadProblem("downloading needs the 'kaggle' extra: pip install 'recipe-repl[kaggle]'") from None
    try:
        return Path(kagglehub.dataset_download(KAGGLE_HANDLE, path=FILE_NAME))
    except Exception as e:  # kagglehub and requests raise many types; each is turned into one line
        raise DownloadProblem(describe_failure(e)) from None


# By class name anywhere in the type's ancestry: requests' ConnectionError/Timeout, the builtin
# ConnectionError family, DNS failures — without importing requests to ask.
_NETWORK_ERRORS = {"ConnectionError", "Timeout", "TimeoutError", "gaierror"}


def describe_failure(exc: BaseException) -> str:
    """One line for a failed download: which of network and credentials is missing, else what went wrong."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    names = {c.__name__ for c in type(exc).__mro__}
    if status in (401, 403) or names & {"CredentialError", "UnauthenticatedError"}:
        return ("Kaggle refused the download: Kaggle credentials are missing or wrong "
                "(KAGGLE_USERNAME and KAGGLE_KEY, or ~/.kaggle/kaggle.json)")
    if status == 404:
        return f"Kaggle has no dataset {KAGGLE_HANDLE} (or no file {FILE_NAME} in it)"
    if status is None and names & _NETWORK_ERRORS:
        return f"no network: cannot reach Kaggle ({type(exc).__name__})"
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"the Kaggle download failed: {type(exc).__name__}" + (f": {first}" if first else "")


def fetch(download: Callable[[], Path] = kaggle_download, dest: Path | None = None,
          expected: Expected = EXPECTED) -> tuple[Path, int]:
    """Download, check and store the Epicurious file; return (stored path, usable recipes).

    The file is checked before it is stored, and stored atomically: a failed or interrupted run leaves
    any earlier good copy in place.
    """
    from recipe_repl.base.atomic import atomic_path

    dest = dest or stored_path()
    try:
        downloaded = download()
    except DownloadProblem as e:
        raise UserError(f"{e}; {MANUAL}") from None
    usable = check_file(downloaded, expected)
    try:
        with atomic_path(dest, parents=True) as tmp:
            shutil.copyfile(downloaded, tmp)
    except OSError as e:
        raise UserError(f"cannot store the Epicurious data in {dest.parent}: {e.strerror}") from None
    return dest, usable
