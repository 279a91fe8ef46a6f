"""What a build may publish: symbolic links stay inside the site and out of its private
folders, a link loop is a clear error, copies keep narrow permissions, and no output ever
holds a PEM private key, whatever file it comes from."""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from fedipress.app import BuildOptions, build, check
from fedipress.app.keyfiles import generate_keys
from fedipress.cli import main
from fedipress.config import load_config
from fedipress.content.writer import _CHUNK
from fedipress.errors import BuildFailed, FedipressError
from fedipress.federation.keys import generate_private_key, private_pem

NOW = datetime(2025, 6, 1, tzinfo=UTC)
SITE = """
-- fedipress.yaml --
title: Link Blog
base_url: https://blog.example/
-- content/posts/hello.md --
---
title: Hello
date: 2024-05-01
---
Hello.
-- static/logo.svg --
<svg xmlns="http://www.w3.org/2000/svg"/>
"""


def opts(**kw: object) -> BuildOptions:
    return BuildOptions(now=lambda: NOW, jobs=1, **kw)  # type: ignore[arg-type]


def a_private_key() -> str:
    return private_pem(generate_private_key())


def cli_build(site: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["build", str(site)])
    return result.exit_code, result.stderr


def published(site: Path) -> dict[str, bytes]:
    out = site / "_site"
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


# --- symbolic links --------------------------------------------------------------------------


def test_build__link_to_the_private_key_is_refused_and_nothing_is_published(make_site) -> None:
    site = make_site(SITE)
    generate_keys(site, load_config(site))
    (site / "static/leak.pem").symlink_to("../.fedipress/private.pem")
    code, err = cli_build(site)
    assert code == 1, err
    assert f"{site / 'static/leak.pem'}: symbolic link into '.fedipress'" in err
    assert "Traceback" not in err
    assert not (site / "_site").exists()


def test_build__link_out_of_the_site_is_refused(make_site, tmp_path: Path) -> None:
    site = make_site(SITE)
    secret = tmp_path / "outside" / "notes.txt"
    secret.parent.mkdir()
    secret.write_text("not for the web")
    (site / "static/notes.txt").symlink_to(secret)
    with pytest.raises(FedipressError) as info:
        build(site, opts())
    assert str(info.value.location) == str(site / "static/notes.txt")
    assert "outside the site folder" in info.value.message


@pytest.mark.parametrize(
    "link", ["static/docs", "content/posts/imported", "content/posts/bundle/more"]
)
def test_build__folder_link_out_of_the_site_is_refused(make_site, tmp_path: Path, link) -> None:
    site = make_site(SITE + "-- content/posts/bundle/index.md --\n---\ntitle: B\n---\nB.\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "leak.md").write_text("---\ntitle: Leak\n---\nsecret\n")
    (site / link).symlink_to(outside, target_is_directory=True)
    with pytest.raises(FedipressError) as info:
        build(site, opts())
    assert str(info.value.location) == str(site / link)
    assert not (site / "_site").exists()


def test_build__site_templates_and_themes_cannot_link_out(make_site, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "templates").mkdir(parents=True)
    (outside / "templates" / "post.html").write_text("{{ post.title }}")
    site = make_site(SITE)
    (site / "templates").mkdir()
    (site / "templates" / "post.html").symlink_to(outside / "templates" / "post.html")
    with pytest.raises(FedipressError, match="outside the site folder"):
        build(site, opts())

    other = make_site(SITE.replace("title: Link Blog", "title: T\ntheme: mine"), name="other")
    (other / "themes").mkdir()
    (other / "themes" / "mine").symlink_to(outside, target_is_directory=True)
    with pytest.raises(FedipressError) as info:
        build(other, opts())
    assert "outside the site folder" in info.value.message


def test_build__link_loop_is_a_clear_error(make_site) -> None:
    site = make_site(SITE)
    (site / "static/a").symlink_to("b")
    (site / "static/b").symlink_to("a")
    code, err = cli_build(site)
    assert code == 1, err  # an error the author can fix, not a crash (70)
    assert "symbolic link loop" in err and "Traceback" not in err
    assert str(site / "static/a") in err or str(site / "static/b") in err


@pytest.mark.parametrize("name", ["fedipress.yaml", "published-ids.json", "fedipress.pub.pem"])
def test_build__a_loop_in_place_of_a_site_file_is_an_error_not_a_crash(make_site, name) -> None:
    # Given a site file replaced by a link to itself (the key and record need a Fediverse site)
    site = make_site(
        SITE.replace(
            "base_url: https://blog.example/",
            "base_url: https://blog.example/\nfediverse: {username: blog}",
        )
    )
    generate_keys(site, load_config(site))
    (site / name).unlink(missing_ok=True)
    (site / name).symlink_to(name)
    # Then the build names the file and the loop, exit 1, no traceback (it was 70, a "bug")
    code, err = cli_build(site)
    assert code == 1, err
    assert f"{name}: symbolic link loop" in err and "Traceback" not in err


def test_build__folder_link_to_its_own_parent_is_a_loop(make_site) -> None:
    site = make_site(SITE)
    (site / "static/sub").mkdir()
    (site / "static/sub/up").symlink_to("..", target_is_directory=True)
    with pytest.raises(FedipressError) as info:
        build(site, opts())
    assert str(info.value.location) == str(site / "static/sub/up")
    assert "loop" in info.value.message


def test_build__links_inside_the_site_still_work(make_site) -> None:
    site = make_site(
        SITE
        + """
-- content/posts/trip/index.md --
---
title: Trip
date: 2024-06-01
---
![map](map.svg)
-- templates/partials/title.html --
{{ page.title }}
-- shared/banner.txt --
shared banner
"""
    )
    (site / "static/icon.svg").symlink_to("logo.svg")
    (site / "static/assets").symlink_to("../shared", target_is_directory=True)
    (site / "content/posts/trip/map.svg").symlink_to("../../../static/logo.svg")
    (site / "static/gone.txt").symlink_to("does-not-exist")  # dangling: nothing to publish
    build(site, opts())
    out = published(site)
    logo = (site / "static/logo.svg").read_bytes()
    assert out["icon.svg"] == logo and out["posts/trip/map.svg"] == logo
    assert out["assets/banner.txt"] == b"shared banner\n"
    assert "gone.txt" not in out
    assert not any((site / "_site" / name).is_symlink() for name in out)


# --- permissions --------------------------------------------------------------------------


def test_build__copies_are_never_more_readable_than_their_source(make_site) -> None:
    site = make_site(SITE + "-- static/private-notes.txt --\nfor me\n")
    notes = site / "static/private-notes.txt"
    notes.chmod(0o600)
    (site / "static/logo.svg").chmod(0o644)
    old = os.umask(0o022)
    try:
        build(site, opts())
        out = site / "_site"
        assert (out / "private-notes.txt").stat().st_mode & 0o777 == 0o600
        assert (out / "logo.svg").stat().st_mode & 0o777 == 0o644
        # Narrowing a source later (chmod keeps the mtime) narrows the copy on the next build.
        (site / "static/logo.svg").chmod(0o600)
        build(site, opts())
        assert (out / "logo.svg").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


# --- private keys in any output -----------------------------------------------------------


def test_build__private_key_pasted_in_a_post_fails_naming_the_file(make_site) -> None:
    site = make_site(SITE)
    key = a_private_key()
    # In a highlighted code block the header is split into tokens in the HTML.
    post = f"---\ntitle: Oops\ndate: 2024-05-02\n---\nMy setup:\n\n```bash\n{key}```\n"
    (site / "content/posts/oops.md").write_text(post)
    code, err = cli_build(site)
    assert code == 1, err
    assert "content/posts/oops.md:8: holds a PEM private key" in err
    assert not (site / "_site").exists()
    with pytest.raises(BuildFailed, match="1 error"):
        check(site, opts())


def test_build__private_key_in_a_static_file_or_bundle_fails(make_site) -> None:
    site = make_site(
        SITE + "-- content/posts/trip/index.md --\n---\ntitle: Trip\ndate: 2024-06-01\n---\nT.\n"
    )
    key = a_private_key().replace("BEGIN PRIVATE", "BEGIN RSA PRIVATE")
    (site / "static/backup.txt").write_text(f"notes\n{key}")
    (site / "content/posts/trip/id_rsa").write_text(key)
    with pytest.raises(BuildFailed) as info:
        build(site, opts())
    named = sorted(str(d.location) for d in info.value.diagnostics)
    assert named == [str(site / "content/posts/trip/id_rsa"), str(site / "static/backup.txt")]
    assert all("PEM private key" in d.message for d in info.value.diagnostics)
    assert not (site / "_site").exists()
    with pytest.raises(BuildFailed):  # check reads the files a build would copy
        check(site, opts())


def test_build__private_key_split_across_read_chunks_is_found(make_site) -> None:
    site = make_site(SITE)
    header = b"-----BEGIN OPENSSH " + b"PRIVATE KEY-----"  # split: no key-like line in git
    padding = b"\0" * (_CHUNK - 20)  # the header straddles the first and second chunk
    (site / "static/video.bin").write_bytes(padding + header + b"\nAAAA\n" + padding)
    with pytest.raises(BuildFailed) as info:
        build(site, opts())
    assert [str(d.location) for d in info.value.diagnostics] == [str(site / "static/video.bin")]


def test_build__private_key_in_a_template_fails(make_site) -> None:
    site = make_site(SITE + "-- templates/404.html --\n<p>lost</p>\n")
    (site / "templates/404.html").write_text(f"<pre>{a_private_key()}</pre>\n")
    with pytest.raises(BuildFailed) as info:
        build(site, opts())
    assert [str(d.location) for d in info.value.diagnostics] == ["404.html"]


def test_build__later_edit_adding_a_key_is_refused_and_keeps_the_old_output(make_site) -> None:
    site = make_site(SITE + "-- static/notes.txt --\nharmless\n")
    build(site, opts())
    before = published(site)
    (site / "static/notes.txt").write_text(f"harmless\n{a_private_key()}")
    with pytest.raises(BuildFailed):
        build(site, opts())
    assert published(site) == before


def test_build__copies_where_sendfile_cannot_write_files(
    make_site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """macOS's sendfile writes only to sockets: the copy falls back to reading and writing."""

    def sockets_only(*args: object) -> int:
        raise OSError(errno.ENOTSOCK, "Socket operation on non-socket")

    monkeypatch.setattr(os, "sendfile", sockets_only)
    site = make_site(SITE + "-- static/notes.txt --\nfor me\n")
    (site / "static/big.bin").write_bytes(os.urandom(3 * _CHUNK + 5))
    (site / "static/notes.txt").chmod(0o600)
    build(site, opts())
    out = site / "_site"
    assert (out / "big.bin").read_bytes() == (site / "static/big.bin").read_bytes()
    assert (out / "notes.txt").read_text() == "for me\n"
    assert (out / "notes.txt").stat().st_mode & 0o777 == 0o600
