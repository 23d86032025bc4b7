"""The error classes and their fixes as README.md's Troubleshooting lists
them (tests/unit/common/hint_test.cpp checks that list against
src/common/hint.cpp): HINTS["repository.unreachable"] is the text after
"; fix: " in every message of that class."""

from __future__ import annotations

import re
from pathlib import Path

_README = Path(__file__).resolve().parents[2] / "README.md"


def _load() -> dict[str, str]:
    text = _README.read_text()
    section = text[text.index("\n## Troubleshooting"):]
    block = section[section.index("<!-- error classes: begin -->"):
                    section.index("<!-- error classes: end -->")]
    return dict(re.findall(r"^- `([a-z_.]+)`: (.*)$", block, re.M))


HINTS = _load()
