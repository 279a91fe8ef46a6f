"""`fedipress keys generate` and version control: the private key is written inside the site
only where git really ignores it, and the command says only what git confirmed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from fedipress.app.keyfiles import PRIVATE_KEY_FILE_ENV
from fedipress.cli import main

CONFIG = "title: T\nbase_url: https://blog.example/\nfediverse:\n  username: blog\n"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "fedipress.yaml").write_text(CONFIG)
    # git must not find a repository above the test's folder.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return root


def git(site: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(site), *args], check=True, capture_output=True)


def generate(site: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["keys", "generate", str(site)])
    return result.exit_code, result.stderr


def test_keys_generate__refuses_a_key_git_would_commit(site: Path) -> None:
    git(site, "init", "-q")
    code, err = generate(site)
    assert code == 1, err
    assert "git does not ignore it" in err and str(site / ".fedipress/private.pem") in err
    assert "add '/.fedipress/private.pem' to .gitignore" in err
    assert "git-ignored" not in err
    # Nothing written: neither half of a pair the author would then have to clean up.
    assert not (site / ".fedipress/private.pem").exists()
    assert not (site / "fedipress.pub.pem").exists()


def test_keys_generate__key_file_env_inside_the_site_must_be_ignored(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(site, "init", "-q")
    (site / ".gitignore").write_text("/.fedipress/\n")
    monkeypatch.setenv(PRIVATE_KEY_FILE_ENV, str(site / "keys" / "blog.pem"))
    code, err = generate(site)
    assert code == 1, err
    assert "add '/keys/blog.pem' to .gitignore" in err
    assert not (site / "keys" / "blog.pem").exists()

    (site / ".gitignore").write_text("/.fedipress/\n/keys/\n")
    code, err = generate(site)
    assert code == 0, err
    assert "(mode 0600, git-ignored)" in err
    assert (site / "keys" / "blog.pem").stat().st_mode & 0o777 == 0o600


def test_keys_generate__an_ignored_default_path_is_reported_as_checked(site: Path) -> None:
    git(site, "init", "-q")
    (site / ".gitignore").write_text("/.fedipress/\n")
    code, err = generate(site)
    assert code == 0, err
    assert "private key: " in err and "(mode 0600, git-ignored)" in err


def test_keys_generate__a_tracked_key_file_is_not_ignored(site: Path) -> None:
    git(site, "init", "-q")
    (site / ".gitignore").write_text("/.fedipress/\n")
    (site / ".fedipress").mkdir()
    (site / ".fedipress/private.pem").write_text("an old key\n")
    git(site, "add", "-f", ".fedipress/private.pem")  # committed once despite the rule
    result = CliRunner().invoke(main, ["keys", "generate", str(site), "--force"])
    code, err = result.exit_code, result.stderr
    assert code == 1, err
    assert "git rm --cached" in err
    assert (site / ".fedipress/private.pem").read_text() == "an old key\n"


def test_keys_generate__outside_git_makes_no_claim(site: Path) -> None:
    code, err = generate(site)
    assert code == 0, err
    assert "git-ignored" not in err
    assert "not in a git work tree" in err


def test_keys_generate__key_outside_the_site(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(site, "init", "-q")
    monkeypatch.setenv(PRIVATE_KEY_FILE_ENV, str(tmp_path / "elsewhere" / "blog.pem"))
    code, err = generate(site)
    assert code == 0, err
    assert "(mode 0600, outside the site)" in err
    assert (tmp_path / "elsewhere" / "blog.pem").is_file()


def test_keys_generate__a_committed_public_key_without_its_private_key_says_what_to_do(
    tmp_path: Path,
) -> None:
    # Given a copy of the example site: its public key is committed, its private key is not
    site = tmp_path / "example"
    shutil.copytree(Path(__file__).resolve().parents[1] / "example-site", site)
    before = (site / "fedipress.pub.pem").read_text()
    result = CliRunner().invoke(main, ["keys", "generate", str(site)])
    # Then it refuses, naming both halves and the three ways on
    assert result.exit_code == 1
    err = result.stderr
    assert "already has a public key" in err and "private key is not here" in err
    assert "FEDIPRESS_PRIVATE_KEY" in err and "fedipress serve" in err and "--force" in err
    assert "Traceback" not in err
    assert (site / "fedipress.pub.pem").read_text() == before
    # and --force gives the account a fresh pair
    forced = CliRunner().invoke(main, ["keys", "generate", "--force", str(site)])
    assert forced.exit_code == 0, forced.output
    assert (site / "fedipress.pub.pem").read_text() != before
    assert (site / ".fedipress/private.pem").is_file()


def test_keys_show__without_a_fediverse_section(tmp_path: Path) -> None:
    site = tmp_path / "plain"
    site.mkdir()
    (site / "fedipress.yaml").write_text("title: T\nbase_url: https://blog.example/\n")
    missing = CliRunner().invoke(main, ["keys", "show", str(site)])
    assert missing.exit_code == 1
    assert "no 'fediverse' section, so it has no account and no key" in missing.stderr
    # With a key but no section: the key is shown, and why there is no key id
    (site / "fedipress.pub.pem").write_text(
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    )
    shown = CliRunner().invoke(main, ["keys", "show", str(site)])
    assert shown.exit_code == 0
    assert shown.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    assert "key id: none" in shown.stderr and "fediverse" in shown.stderr
