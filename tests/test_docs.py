"""The docs read well as plain Markdown, and every Python block in them runs.

Each page shows an example's file in full after a marker comment (invisible once rendered)::

    <!-- example: examples/sqs_handler.py -->
    ```python
    ...the file...
    ```

so that the page reads the same on the built site and as a raw file (in the repository, in an
editor). This test fails when a page and its example differ;
``python tests/test_docs.py --write`` copies the examples into the pages again. The examples
themselves run in ``tests/test_examples.py``.

Every other ``python`` block of ``docs/*.md`` and ``README.md`` runs here, one test each,
named by page and line (``test_block_runs[async.md:161]``), in an empty directory, with
``examples`` importable and every AWS endpoint pointing at a closed local port:

- A block runs as a script, in a namespace of its own, as a reader who copies it would run
  it: it makes its own imports, and its ``assert`` statements must hold.
- A block that defines ``lambda_handler`` is then called as Lambda calls it, with a fake
  context and a sample event of its processor's event type: two records, whose payloads
  are ``{"id": "order-1", "quantity": 1}`` and ``{"id": "order-2", "quantity": 2}``. It
  must report neither.
- A block that defines ``test_*`` functions is a test module: pytest runs it in a
  subprocess, with the project's settings (warnings are errors).

An HTML comment on the line just before the fence, indented as the fence, changes that:

- ``<!-- docs-test: continue -->`` runs the block after the page's previous Python block,
  in its namespace: for a block that goes on with what the one before it defined.
- ``<!-- docs-test: skip REASON -->`` does not run the block, and says why in the test
  report. Only for what cannot run here (a real AWS account, a service the tests do not
  install), never for a block that fails.

Every line of a ``python`` or ``shell`` block, examples included, is at most 88 characters
long (after the fence's indentation): the width of the content column, past which a code
block scrolls.

``PENDING_RUN`` and ``PENDING_LINES`` list the blocks known to break these rules until their
page is fixed; each is an expected failure.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MARKER = re.compile(r"^(?P<indent>[ ]*)<!-- example: (?P<path>\S+) -->$")
DIRECTIVE = re.compile(r"^(?P<indent>[ ]*)<!-- docs-test: (?P<verb>\w+)(?: (?P<why>.*?))? -->$")
FENCE = re.compile(r"^(?P<indent>[ ]*)```(?P<lang>[\w+-]*)$")
#: The width of the content column in code blocks, in characters.
MAX_LINE = 88
#: Blocks whose lines a reader copies (the others show output, data or diagrams).
COPIED = {"python", "shell", "sh", "bash"}
#: The payloads of the records a block's ``lambda_handler`` is called with.
PAYLOADS = [{"id": "order-1", "quantity": 1}, {"id": "order-2", "quantity": 2}]


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


class Block(NamedTuple):
    """A fenced code block of a page."""

    page: str  # the file's name, as in test IDs: "async.md", "README.md"
    line: int  # the opening fence's, from 1
    lang: str
    code: str  # without the fence's indentation
    #: The comment on the line before the fence: ("example", path), ("skip", why),
    #: ("continue", ""), or None.
    directive: tuple[str, str] | None

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def verb(self) -> str | None:
        return None if self.directive is None else self.directive[0]


def _directive(line: str) -> tuple[str, str] | None:
    if (match := MARKER.match(line)) is not None:
        return "example", match["path"]
    if (match := DIRECTIVE.match(line)) is not None:
        return match["verb"], match["why"] or ""
    return None


def code_blocks(path: Path) -> list[Block]:
    """Every fenced block of the page at *path*, in page order."""
    lines = path.read_text(encoding="utf-8").split("\n")
    found: list[Block] = []
    number = 0
    while number < len(lines):
        fence = FENCE.match(lines[number])
        if fence is None:
            number += 1
            continue
        indent, end = fence["indent"], number + 1
        while lines[end] != f"{indent}```":
            end += 1
        code = "\n".join(line.removeprefix(indent) for line in lines[number + 1 : end])
        directive = _directive(lines[number - 1]) if number else None
        found.append(Block(path.name, number + 1, fence["lang"], f"{code}\n", directive))
        number = end + 1
    return found


DOC_FILES = [*pages(), ROOT / "README.md"]
ALL_BLOCKS = [block for path in DOC_FILES for block in code_blocks(path)]
PYTHON_BLOCKS = [block for block in ALL_BLOCKS if block.lang == "python"]
#: The examples run in tests/test_examples.py.
RUN_HERE = [block for block in PYTHON_BLOCKS if block.verb != "example"]
COPIED_BLOCKS = [block for block in ALL_BLOCKS if block.lang in COPIED]

#: Blocks that cannot run here until their page marks or fixes them, by page and a line of
#: the block, with what the page needs. They are not run.
PENDING_RUN: dict[tuple[str, str], str] = {
    ("worker.md", "stats = await worker.run()"): (
        "polls a real SQS queue until stopped (a skip marker)"
    ),
}
#: Blocks with lines over 88 characters until their page (or its example) is fixed. They
#: are strict expected failures: the fix fails the test until its entry goes.
PENDING_LINES: dict[tuple[str, str], str] = {
    ("worker.md", "One record handler for Lambda and for a long-lived worker"): (
        "examples/worker_handler.py"
    ),
}


def _pending(block: Block, pending: dict[tuple[str, str], str]) -> str | None:
    """Why *block* is pending, or ``None``."""
    for (page, text), why in pending.items():
        if page == block.page and text in block.code:
            return why
    return None


def _params(found: list[Block], pending: dict[tuple[str, str], str], *, run: bool) -> list[Any]:
    """*found* as test parameters, each pending block an expected failure."""
    params = []
    for block in found:
        why = _pending(block, pending)
        if why is None:
            params.append(pytest.param(block, id=block.name))
            continue
        if run:
            why = f"lines over {MAX_LINE} characters" + (f", in {why}" if why else "")
        mark = pytest.mark.xfail(reason=why, strict=True, run=run)
        params.append(pytest.param(block, marks=mark, id=block.name))
    return params


def _chain(block: Block) -> list[Block]:
    """*block*, after the blocks it continues (each ``continue`` reaches one block back)."""
    same_page = [b for b in PYTHON_BLOCKS if b.page == block.page]
    chain = [block]
    while chain[0].verb == "continue":
        index = same_page.index(chain[0])
        assert index > 0, f"{chain[0].name} continues, but no Python block comes before it"
        chain.insert(0, same_page[index - 1])
    for earlier in chain[:-1]:
        assert earlier.verb in (None, "continue", "example"), (
            f"{block.name} continues {earlier.name}, which does not run"
        )
    return chain


def _defines_tests(code: str) -> bool:
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
        for node in ast.parse(code).body
    )


def _sample_event(namespace: dict[str, Any], block: Block) -> dict[str, Any]:
    """Two records of the event type of the processors in *namespace*."""
    from anybatch import BasePartialProcessor, testing

    sources = {
        value.event_type.name
        for value in namespace.values()
        if isinstance(value, BasePartialProcessor) and value.event_type is not None
    }
    assert len(sources) == 1, (
        f"{block.name} defines lambda_handler, which is called on a sample event of its "
        f"processor's event type; the event types of its processors: {sorted(sources)}"
    )
    source = sources.pop()
    if source == "SQS":
        return testing.sqs_event(PAYLOADS)
    if source == "KinesisDataStreams":
        return testing.kinesis_event(PAYLOADS)
    if source == "DynamoDBStreams":
        return testing.dynamodb_event([{"keys": {"id": p["id"]}, "new_image": p} for p in PAYLOADS])
    if source == "Kafka":
        return testing.kafka_event(PAYLOADS)
    assert source == "Firehose", source
    return testing.firehose_event(PAYLOADS)


def _call_lambda_handler(namespace: dict[str, Any], block: Block) -> None:
    from anybatch.testing import fake_lambda_context

    response = namespace["lambda_handler"](_sample_event(namespace, block), fake_lambda_context())
    assert isinstance(response, dict), f"{block.name}: lambda_handler returned {response!r}"
    if "batchItemFailures" in response:
        assert response["batchItemFailures"] == [], f"{block.name} reported sample records"
    if "records" in response:  # Firehose's answer
        assert {r["result"] for r in response["records"]} == {"Ok"}, block.name


def _run_in_module(chain: list[Block]) -> None:
    *earlier, block = chain
    name = f"docs_block_{Path(block.page).stem}_{block.line}".replace("-", "_")
    module = types.ModuleType(name)
    sys.modules[name] = module  # where pydantic and typing look the block's names up
    try:
        namespace = module.__dict__
        for part in earlier:
            exec(compile(part.code, part.name, "exec"), namespace)
        before = namespace.get("lambda_handler")
        exec(compile(block.code, block.name, "exec"), namespace)
        if namespace.get("lambda_handler") is not before:
            _call_lambda_handler(namespace, block)
    finally:
        del sys.modules[name]


def _run_as_tests(block: Block, directory: Path) -> None:
    module = directory / f"test_{Path(block.page).stem.replace('-', '_')}_{block.line}.py"
    module.write_text(block.code, encoding="utf-8")
    config = ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(directory)]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *config, str(module)],
        cwd=directory,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # a reader's tests import their modules
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"{block.name}:\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, ``examples`` importable, and no AWS endpoint that answers."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    # A block that calls SQS (or another service) by mistake fails at once, far from AWS.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:9")
    return tmp_path


@pytest.mark.parametrize("block", _params(RUN_HERE, PENDING_RUN, run=False))
def test_block_runs(block: Block, isolated: Path) -> None:
    if block.directive is not None and block.verb == "skip":
        pytest.skip(f"{block.name}: {block.directive[1]}")
    if _defines_tests(block.code):
        assert block.verb is None, f"{block.name}: a test module runs alone"
        _run_as_tests(block, isolated)
    else:
        _run_in_module(_chain(block))


@pytest.mark.parametrize("block", _params(COPIED_BLOCKS, PENDING_LINES, run=True))
def test_block_lines_fit_the_content_column(block: Block) -> None:
    long = [
        f"line {block.line + offset + 1}: {len(line)} characters"
        for offset, line in enumerate(block.code.split("\n"))
        if len(line) > MAX_LINE
    ]
    assert long == [], f"{block.name} has lines over {MAX_LINE} characters: {long}"


def test_every_docs_test_comment_is_a_directive_before_a_python_block() -> None:
    for path in DOC_FILES:
        lines = path.read_text(encoding="utf-8").split("\n")
        for number, line in enumerate(lines, 1):
            if "docs-test:" not in line:
                continue
            where = f"{path.name}:{number}"
            match = DIRECTIVE.match(line)
            assert match is not None, f"{where}: not a docs-test comment"
            verb, has_why = match["verb"], bool(match["why"])
            assert (verb, has_why) in {("continue", False), ("skip", True)}, (
                f"{where}: <!-- docs-test: continue --> or <!-- docs-test: skip REASON -->"
            )
            assert lines[number] == f"{match['indent']}```python", f"{where}: no block after it"


def test_every_pending_entry_is_one_block_without_a_directive() -> None:
    for page, text in [*PENDING_RUN, *PENDING_LINES]:
        found = [b for b in ALL_BLOCKS if b.page == page and text in b.code]
        assert len(found) == 1, f"{page}: {text!r} is in {len(found)} blocks"
        assert found[0].verb in (None, "example"), f"{found[0].name} is marked: unlist it"


def _invalid_event_rows() -> list[tuple[str, str]]:
    """The rows of results.md's table of InvalidEventError messages whose input is code."""
    text = (DOCS / "results.md").read_text(encoding="utf-8")
    section = text.split("### `InvalidEventError`", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|$", section, flags=re.MULTILINE)
    assert len(rows) >= 5, "the table of InvalidEventError messages has moved"
    return rows


@pytest.mark.parametrize(("given", "message"), _invalid_event_rows())
def test_invalid_event_messages_are_as_documented(given: str, message: str) -> None:
    from anybatch import BatchProcessor, EventType, InvalidEventError, process_partial_response

    if given.startswith("BatchProcessor("):
        with pytest.raises(InvalidEventError) as caught:
            eval(given, {"BatchProcessor": BatchProcessor})
    else:
        event, processor = ast.literal_eval(given), BatchProcessor(EventType.SQS)
        with pytest.raises(InvalidEventError) as caught:
            process_partial_response(event, lambda record: None, processor)
    assert str(caught.value) == message


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
