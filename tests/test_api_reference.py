"""The API reference covers every public name, and its build hook says what is missing.

The site's build runs ``hooks/api_reference.py``: it fails when a public module has no page
or a page renders less than its module's ``__all__``. These tests check the pages against the
package without building the site (mkdocs is not a test dependency), and the hook's logic on
made-up packages and pages.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_hook() -> Any:
    # Loaded from its file, as mkdocs loads a hook: hooks/ is not a package.
    spec = importlib.util.spec_from_file_location(
        "api_reference", ROOT / "hooks" / "api_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


api_reference = _load_hook()
REFERENCE = ROOT / "docs" / "reference"


def page_modules() -> dict[str, str]:
    """Each module a reference page renders (``::: anybatch.records``), and the page's name."""
    found: dict[str, str] = {}
    for page in sorted(REFERENCE.glob("*.md")):
        for module in re.findall(r"^::: (\S+)$", page.read_text(), flags=re.MULTILINE):
            found[module] = page.name
    return found


def test_every_public_module_has_a_page_in_the_nav() -> None:
    modules = set(api_reference.public_modules())
    assert {"anybatch", "anybatch.records", "anybatch.models", "anybatch.sqs"} <= modules
    assert {"anybatch.observe", "anybatch.testing", "anybatch.idempotency"} <= modules
    pages = page_modules()
    assert modules == set(pages)
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in pages.values():
        assert f"reference/{page}" in nav, page


def test_every_public_module_declares_what_it_exports() -> None:
    for module, path in api_reference.public_modules().items():
        names = api_reference.declared_names(path)
        assert names, module
        assert len(names) == len(set(names)), module


def test_declared_names_are_the_modules_own_all() -> None:
    # Read from the source, so that the docs build needs no optional extra; the same list.
    import anybatch.records
    import anybatch.testing

    for module in (anybatch.records, anybatch.testing):
        path = Path(str(module.__file__))
        assert api_reference.declared_names(path) == module.__all__


@pytest.fixture
def package(tmp_path: Path) -> Path:
    root = tmp_path / "anybatch"
    (root / "tool").mkdir(parents=True)
    (root / "__init__.py").write_text('__all__ = ["Processor", "run"]\n')
    (root / "records.py").write_text('__all__ = ("View",)\n')
    (root / "tool" / "__init__.py").write_text("__all__: list[str] = []\n")
    (root / "_private.py").write_text('__all__ = ["Hidden"]\n')
    (root / "__main__.py").write_text("")
    return root


def test_the_hook_finds_the_public_modules_and_their_names(package: Path) -> None:
    assert api_reference.expected(package) == {
        "anybatch",
        "anybatch.Processor",
        "anybatch.run",
        "anybatch.records",
        "anybatch.records.View",
        "anybatch.tool",
    }


def test_the_hook_names_what_the_pages_did_not_render(package: Path) -> None:
    rendered = {"anybatch", "anybatch.Processor", "anybatch.records", "anybatch.Processor.x"}
    assert api_reference.missing(rendered, package) == [
        "anybatch.records.View",
        "anybatch.run",
        "anybatch.tool",
    ]


def test_a_public_module_without_all_is_refused(package: Path) -> None:
    (package / "loose.py").write_text("X = 1\n")
    with pytest.raises(ValueError, match=r"loose\.py has no __all__"):
        api_reference.expected(package)


def test_the_hook_warns_once_every_page_is_converted(caplog: pytest.LogCaptureFixture) -> None:
    api_reference.on_config(None)
    page = SimpleNamespace(file=SimpleNamespace(src_uri="reference/records.md"))
    other = SimpleNamespace(file=SimpleNamespace(src_uri="models.md"))
    html = '<h2 id="anybatch.records">x</h2><h3 id="anybatch.records.SQSRecord">y</h3>'
    api_reference.on_page_content(html, page, None, None)
    api_reference.on_page_content('<h2 id="anybatch.BatchProcessor">', other, None, None)
    with caplog.at_level("WARNING", logger="mkdocs.hooks.api_reference"):
        api_reference.on_env(None, None, None)
    (record,) = caplog.records
    assert record.name == "mkdocs.hooks.api_reference"  # counted by mkdocs --strict
    message = record.getMessage()
    assert "anybatch.BatchProcessor" in message  # only the reference pages count
    assert "anybatch.records.SQSRecord," not in message
    assert "anybatch.records.SQSRecord" not in message.split(": ", 1)[1].split(", ")


def test_the_docstrings_roles_render_as_code_linked_to_anybatch_objects() -> None:
    html = (
        "the :class:<code>~anybatch.RecordOutcome</code> objects, "
        ":func:<code>anybatch.testing.sqs_event()</code>, "
        ":class:<code>~collections.abc.Mapping</code>, :exc:<code>KeyError</code>"
    )
    assert api_reference.roles_as_code(html) == (
        'the <autoref identifier="anybatch.RecordOutcome" optional><code>RecordOutcome</code>'
        "</autoref> objects, "
        '<autoref identifier="anybatch.testing.sqs_event" optional>'
        "<code>anybatch.testing.sqs_event()</code></autoref>, "
        "<code>Mapping</code>, <code>KeyError</code>"
    )
