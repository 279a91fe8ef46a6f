"""Key pairs of topic accounts, and key rotation: where each key lives, how the CLI makes
them, what a rotation keeps and refuses, and the dev keys `fedipress serve` falls back to."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fedipress.app.keyfiles import (
    dev_key_pair,
    dev_public_key,
    key_paths,
    private_key_env,
    read_private_key,
    read_retiring_keys,
    remove_retiring_key,
    rotate_key,
)
from fedipress.cli import main
from fedipress.config import load_config
from fedipress.errors import FedipressError
from fedipress.federation.keys import fingerprint, private_pem

CONFIG = """title: T
base_url: https://blog.example/
fediverse:
  username: blog
  accounts:
    - {username: rust, tags: [rust]}
    - {username: my.bread, tags: [bread]}
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "fedipress.yaml").write_text(CONFIG)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # no repository above
    return root


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_keys_generate__makes_a_pair_per_account_then_only_the_missing_ones(site: Path) -> None:
    code, _, err = run("keys", "generate", str(site))
    assert code == 0, err
    for public, private in (
        ("fedipress.pub.pem", "private.pem"),
        ("fedipress.rust.pub.pem", "private-rust.pem"),
        ("fedipress.my.bread.pub.pem", "private-my.bread.pem"),
    ):
        assert (site / public).exists() and (site / ".fedipress" / private).exists()
        assert oct((site / ".fedipress" / private).stat().st_mode & 0o777) == "0o600"
    assert "account 'rust'" in err
    # All there: a second run refuses, pointing at rotation
    code, _, err = run("keys", "generate", str(site))
    assert code == 1 and "keys rotate" in err
    # A topic account added later gets its pair, the others are left alone
    main_key = (site / "fedipress.pub.pem").read_text()
    (site / "fedipress.yaml").write_text(CONFIG + "    - {username: go, tags: [go]}\n")
    code, _, err = run("keys", "generate", str(site))
    assert code == 0 and "account 'go'" in err and "account 'rust'" not in err
    assert (site / "fedipress.pub.pem").read_text() == main_key
    code, out, _ = run("keys", "show", str(site), "--account", "go")
    assert out.startswith("key id: https://blog.example/ap/topics/go/actor#main-key\n")
    code, _, err = run("keys", "show", str(site), "--account", "nope")
    assert code == 1 and "no account 'nope'" in err


def test_private_key__of_a_topic_account_from_its_own_variable(site: Path) -> None:
    run("keys", "generate", str(site))
    config = load_config(site)
    assert private_key_env("my.bread") == "FEDIPRESS_PRIVATE_KEY_FOR_MY_BREAD"
    pem = (site / ".fedipress" / "private-my.bread.pem").read_text()
    (site / ".fedipress" / "private-my.bread.pem").unlink()
    with pytest.raises(FedipressError, match="FEDIPRESS_PRIVATE_KEY_FOR_MY_BREAD"):
        read_private_key(site, config, {}, account="my.bread")
    env = {"FEDIPRESS_PRIVATE_KEY_FOR_MY_BREAD": pem.replace("\n", "\\n")}
    key = read_private_key(site, config, env, account="my.bread")
    assert private_pem(key) == pem
    # The main account's key would not do: checked against the account's public key
    with pytest.raises(FedipressError, match=r"account 'my\.bread'"):
        read_private_key(
            site,
            config,
            {"FEDIPRESS_PRIVATE_KEY_FOR_MY_BREAD": (site / ".fedipress/private.pem").read_text()},
            account="my.bread",
        )


def test_rotate__keeps_the_old_key_until_retired_and_refuses_twice(site: Path) -> None:
    run("keys", "generate", str(site))
    config = load_config(site)
    old = read_private_key(site, config, {}, account="rust")
    rotation = rotate_key(site, config, "rust", {})
    new = read_private_key(site, config, {}, account="rust")
    assert fingerprint(new.public_key()) == rotation.new_fingerprint != rotation.old_fingerprint
    assert rotation.retiring == site / ".fedipress" / "retiring" / "rust.pem"
    assert oct(rotation.retiring.stat().st_mode & 0o777) == "0o600"
    retiring = read_retiring_keys(site, config, {})
    assert list(retiring) == ["rust"]
    assert fingerprint(retiring["rust"].public_key()) == fingerprint(old.public_key())
    with pytest.raises(FedipressError, match="still being retired"):
        rotate_key(site, config, "rust", {})
    assert remove_retiring_key(site, config, "not-it", {}) is False
    assert remove_retiring_key(site, config, rotation.old_fingerprint, {}) is True
    assert read_retiring_keys(site, config, {}) == {}


def test_rotate__refuses_a_key_from_the_environment(site: Path) -> None:
    run("keys", "generate", str(site))
    config = load_config(site)
    env = {"FEDIPRESS_PRIVATE_KEY": (site / ".fedipress/private.pem").read_text()}
    with pytest.raises(FedipressError, match="comes from FEDIPRESS_PRIVATE_KEY"):
        rotate_key(site, config, "", env)
    assert not (site / ".fedipress" / "retiring").exists()


def test_dev_keys__one_per_account_when_the_site_keys_are_missing(site: Path) -> None:
    config = load_config(site)
    public = dev_key_pair(site, config, {})
    assert public is not None
    for account in ("", "rust", "my.bread"):
        read_private_key(site, config, {}, public_key=public, account=account)
        assert dev_public_key(public, account).exists()
    # With every site key readable there is no dev key
    run("keys", "generate", str(site))
    assert dev_key_pair(site, config, {}) is None
    assert key_paths(site, config, {}, "rust").private == site / ".fedipress" / "private-rust.pem"
