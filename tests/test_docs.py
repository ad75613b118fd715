"""The docs read well as plain Markdown, and their code is the examples' code, to the byte.

Each page shows an example's file in full after a marker comment (invisible once rendered)::

    <!-- example: examples/sqs_handler.py -->
    ```python
    ...the file...
    ```

so that the page reads the same on the built site and as a raw file (in the repository, in an
editor). This test fails when a page and its example differ;
``python tests/test_docs.py --write`` copies the examples into the pages again.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MARKER = re.compile(r"^(?P<indent>[ ]*)<!-- example: (?P<path>\S+) -->$")


def blocks(text: str) -> list[tuple[str, int, int, str]]:
    """Each marked block: (example path, first code line, end line, indentation)."""
    lines = text.split("\n")
    found = []
    for number, line in enumerate(lines):
        match = MARKER.match(line)
        if match is None:
            continue
        indent = match["indent"]
        assert lines[number + 1].startswith(f"{indent}```"), f"no fence after line {number + 1}"
        end = number + 2
        while lines[end] != f"{indent}```":
            end += 1
        found.append((match["path"], number + 2, end, indent))
    return found


def rendered(text: str) -> str:
    lines = text.split("\n")
    for path, start, end, indent in reversed(blocks(text)):
        code = (ROOT / path).read_text().rstrip("\n").split("\n")
        lines[start:end] = [f"{indent}{line}" if line else "" for line in code]
    return "\n".join(lines)


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def test_every_marked_block_is_its_example_to_the_byte() -> None:
    stale = [page.name for page in pages() if rendered(page.read_text()) != page.read_text()]
    assert stale == [], f"stale examples in {stale}: python tests/test_docs.py --write"


def test_no_page_needs_a_snippet_include_to_read_well() -> None:
    for page in pages():
        if page.name == "changelog.md":  # the site's copy of CHANGELOG.md, linked as that file
            continue
        assert "--8<--" not in page.read_text(), page.name


def test_every_example_a_page_shows_exists() -> None:
    for page in pages():
        for path, *_ in blocks(page.read_text()):
            assert (ROOT / path).is_file(), f"{page.name} shows {path}, which does not exist"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python tests/test_docs.py --write")
    for page in pages():
        text = page.read_text()
        new = rendered(text)
        if new != text:
            page.write_text(new)
            print(f"updated {page.relative_to(ROOT)}")
