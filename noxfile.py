"""Test, lint and docs sessions: ``python -m nox`` runs them all."""

from __future__ import annotations

import glob
import os
import shutil
import sys

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = False
nox.options.sessions = ["tests", "lint", "docs"]

SUPPORTED = ["3.10", "3.11", "3.12", "3.13"]


def _present_pythons() -> list[str]:
    """The supported versions this machine has, pyenv installs included."""
    # A pyenv shim answers only for the versions pyenv has selected: put each installed
    # version's own bin directory first on PATH so that pythonX.Y finds the real one.
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    bindirs = sorted(glob.glob(os.path.join(root, "versions", "3.*", "bin")))
    os.environ["PATH"] = os.pathsep.join([*bindirs, os.environ.get("PATH", "")])
    present = [v for v in SUPPORTED if shutil.which(f"python{v}")]
    return present or [f"{sys.version_info[0]}.{sys.version_info[1]}"]


PYTHONS = _present_pythons()


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite with coverage (asyncio and trio, SQS against a local moto server)."""
    session.install(".[test]")
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "combine", success_codes=[0, 1])
    session.run("coverage", "report")


@nox.session(python=PYTHONS[-1:])
def lint(session: nox.Session) -> None:
    """ruff (lint and format), mypy --strict and pyright strict, type tests included."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("pyright")


@nox.session(python=PYTHONS[-1:])
def docs(session: nox.Session) -> None:
    """Build the documentation site; warnings (broken links, missing snippets) fail it."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", "--site-dir", session.create_tmp() + "/site")
