"""The import paths users write into their deploy configuration keep working: the Lambda
handler, the ASGI adapter and the serverless setup (the Vercel function), the console script,
and `python -m fedipress`."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("fedipress.adapters.aws_lambda", "handler"),
        ("fedipress.adapters.asgi", "InboxASGI"),
        ("fedipress.inbox.setup", "open_inbox"),
        ("fedipress.inbox.setup", "InboxSetup"),
        ("fedipress.inbox.hooks", "hook_headers"),
        ("fedipress.cli", "main"),
    ],
)
def test_documented_entry_point__imports(module: str, name: str) -> None:
    assert callable(getattr(importlib.import_module(module), name))


def test_console_script__names_the_cli_main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"fedipress": "fedipress.cli:main"}


def test_python_dash_m__runs_the_cli() -> None:
    for module in ("fedipress", "fedipress.cli"):
        done = subprocess.run(
            [sys.executable, "-m", module, "--version"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
        assert done.returncode == 0 and "fedipress" in done.stdout, done.stderr
