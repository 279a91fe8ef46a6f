"""Shared fixtures: inline sites, a clean environment, golden-file comparison."""

from __future__ import annotations

import difflib
import os
import textwrap
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="Rewrite tests/golden files.")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FEDIPRESS_* or proxy variables leak in from the machine running the tests."""
    for name in list(os.environ):
        if name.startswith("FEDIPRESS_") or name.lower() in (
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "no_proxy",
        ):
            monkeypatch.delenv(name, raising=False)


def write_site(root: Path, text: str) -> Path:
    """Write files from a txtar-like string: '-- path --' lines start each file (as in Hugo)."""
    text = textwrap.dedent(text)
    current: str | None = None
    lines: list[str] = []

    def flush() -> None:
        if current is not None:
            path = root / current
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines).strip("\n") + "\n", encoding="utf-8")

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("-- ") and stripped.endswith(" --"):
            flush()
            current = stripped[3:-3].strip()
            lines = []
        else:
            lines.append(line)
    flush()
    return root


@pytest.fixture
def make_site(tmp_path: Path):
    def make(text: str, name: str = "site") -> Path:
        return write_site(tmp_path / name, text)

    return make


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """Compare text with tests/golden/NAME; --update-golden rewrites the file."""
    update = request.config.getoption("--update-golden")

    def check(name: str, actual: str) -> None:
        path = GOLDEN / name
        if update or not path.exists():
            if not update and os.environ.get("CI"):
                pytest.fail(f"golden file {name} is missing; run pytest --update-golden")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8")
            return
        expected = path.read_text(encoding="utf-8")
        if expected != actual:
            diff = "\n".join(
                difflib.unified_diff(
                    expected.splitlines(),
                    actual.splitlines(),
                    f"golden/{name}",
                    "actual",
                    lineterm="",
                )
            )
            pytest.fail(f"output differs from golden/{name} (pytest --update-golden):\n{diff}")

    return check
