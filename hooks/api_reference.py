"""An mkdocs hook: the build fails when the API reference misses a public name.

The reference pages (``docs/reference/*.md``) render each public module with mkdocstrings
(``::: anybatch.records``). This hook collects the objects those pages rendered (their
anchors, ``anybatch.records.SQSRecord``) and compares them, once every page is converted,
with what the package declares public: each module of ``src/anybatch`` whose name has no
leading underscore, and every name in its ``__all__``. A public module without its page, or a
name its page does not render, is a warning, which fails the build (``strict: true``).

The modules are read, not imported: building the docs needs none of the optional extras.
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "anybatch"
#: The pages whose anchors count as the reference.
REFERENCE = "reference/"
ANCHOR = re.compile(r'\bid="(anybatch(?:\.\w+)*)"')

#: A Sphinx role the docstrings use (``:class:`~anybatch.X```), as Markdown renders it.
ROLE = re.compile(r":(?:class|func|meth|attr|exc|data|obj|mod):<code>(~?)([\w.]+)(\(\))?</code>")

log = logging.getLogger("mkdocs.hooks.api_reference")  # under "mkdocs": counted by --strict
_rendered: set[str] = set()


def public_modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Each public module of the package and its file: ``anybatch``, ``anybatch.records``..."""
    found = {"anybatch": package / "__init__.py"}
    for path in sorted(package.iterdir()):
        name = path.stem if path.suffix == ".py" else path.name
        if name.startswith("_"):
            continue
        if path.suffix == ".py":
            found[f"anybatch.{name}"] = path
        elif (path / "__init__.py").is_file():
            found[f"anybatch.{name}"] = path / "__init__.py"
    return found


def declared_names(path: Path) -> list[str]:
    """The names of a module's ``__all__``, read from its source (a literal list or tuple)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                assert node.value is not None
                value = ast.literal_eval(node.value)
                return [str(name) for name in value]
    raise ValueError(f"{path} has no __all__: a public module declares what it exports")


def expected(package: Path = PACKAGE) -> set[str]:
    """The anchors the reference must have: each public module and each name it exports."""
    names: set[str] = set()
    for module, path in public_modules(package).items():
        names.add(module)
        names.update(f"{module}.{name}" for name in declared_names(path))
    return names


def missing(rendered: set[str], package: Path = PACKAGE) -> list[str]:
    """What the reference should show and does not, sorted."""
    return sorted(expected(package) - rendered)


def on_config(config: Any) -> Any:
    """Forget the anchors of a previous build (``mkdocs serve`` rebuilds in one process)."""
    _rendered.clear()
    return config


def _role(match: re.Match[str]) -> str:
    tilde, path, call = match.groups()
    title = f"{path.rsplit('.', 1)[-1] if tilde else path}{call or ''}"
    if not path.startswith("anybatch."):
        return f"<code>{title}</code>"
    # mkdocs-autorefs links it to the object's entry, or leaves the code as it is.
    return f'<autoref identifier="{path}" optional><code>{title}</code></autoref>'


def roles_as_code(html: str) -> str:
    """The docstrings' Sphinx roles as code, linked when they name an anybatch object."""
    return ROLE.sub(_role, html)


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Collect the objects a reference page rendered; render its docstrings' roles as code."""
    if not page.file.src_uri.startswith(REFERENCE):
        return html
    _rendered.update(ANCHOR.findall(html))
    return roles_as_code(html)


def on_env(env: Any, config: Any, files: Any) -> Any:
    """Once every page is converted: warn about each public name the reference misses."""
    absent = missing(_rendered)
    if absent:
        log.warning(
            "the API reference misses %d public name(s): %s. Add a page for a new module "
            "(docs/reference/, ::: anybatch.<module>, and its line in mkdocs.yml's nav), or "
            "make the name resolvable where __all__ declares it",
            len(absent),
            ", ".join(absent),
        )
    return env
