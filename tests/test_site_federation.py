"""The federation documents a build writes, checked against the static checklist in
FEDERATION.md §12 on the example site and on small inline sites."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from fedipress.app.build import BuildOptions, build, check
from fedipress.app.checks import check_files
from fedipress.app.keyfiles import generate_keys
from fedipress.cli.main import main
from fedipress.config import load_config
from fedipress.errors import BuildFailed, ConfigError
from fedipress.federation.keys import load_private_key
from fedipress.hosting import header_rules, headers_for, redirect_rules

EXAMPLE = Path(__file__).parent.parent / "example-site"
NOW = datetime(2025, 6, 1, tzinfo=UTC)
AP = "application/activity+json"


def opts(**kw) -> BuildOptions:
    kw.setdefault("now", lambda: NOW)
    kw.setdefault("jobs", 1)
    return BuildOptions(**kw)


def files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example site, built once into a copy (its committed public key included)."""
    site = tmp_path_factory.mktemp("example") / "site"
    shutil.copytree(EXAMPLE, site, ignore=shutil.ignore_patterns("_site", ".fedipress"))
    build(site, opts())
    return site


def doc(site: Path, path: str) -> dict:
    return json.loads((site / "_site" / path).read_bytes())


def test_example__every_document_passes_the_static_checklist(example: Path) -> None:
    config = load_config(example)
    built = files(example / "_site")
    problems = check_files(config, built.items(), header_rules(config), redirect_rules(config))
    assert problems == []
    ap_docs = [p for p in built if p.startswith("ap/")]
    assert len(ap_docs) > 2 * 12  # an object and a replies collection per post, and more


def test_example__webfinger_loops_back_to_the_actor(example: Path) -> None:
    jrd = doc(example, ".well-known/webfinger")
    actor = doc(example, "ap/actor")
    assert jrd["subject"] == "acct:mara@blog.example"
    self_link = next(link for link in jrd["links"] if link["rel"] == "self")
    assert self_link == {"rel": "self", "type": AP, "href": actor["id"]}
    assert actor["preferredUsername"] + "@blog.example" == jrd["subject"].removeprefix("acct:")


def test_example__actor_fields_mastodon_reads(example: Path) -> None:
    actor = doc(example, "ap/actor")
    assert actor["id"] == "https://blog.example/ap/actor"
    assert actor["type"] == "Person"
    assert actor["name"] == "Mara Lindholm"
    assert "<strong>Kitchen Table Notes</strong>" in actor["summary"]
    assert actor["icon"] == {
        "type": "Image",
        "mediaType": "image/png",
        "url": "https://blog.example/avatar.png",
    }
    assert actor["inbox"] == actor["endpoints"]["sharedInbox"] == "https://blog.example/ap/inbox"
    assert actor["publicKey"]["id"] == "https://blog.example/ap/actor#main-key"
    assert actor["publicKey"]["publicKeyPem"] == (EXAMPLE / "fedipress.pub.pem").read_text()
    assert [f["name"] for f in actor["attachment"]] == ["Blog", "Code"]
    assert 'rel="me' in actor["attachment"][0]["value"]
    assert "https://w3id.org/security/v1" in actor["@context"]
    outbox = doc(example, "ap/outbox")
    assert outbox["totalItems"] == 12
    page = doc(example, "ap/outbox-pages/1")
    assert [item["type"] for item in page["orderedItems"]] == ["Create"] * 12
    newest = page["orderedItems"][0]["object"]
    served = doc(example, "ap/posts/" + newest["id"].rsplit("/", 1)[1])
    # The outbox's copy is the object as sent; the served one adds its live collections.
    live = ("@context", "replies", "likes", "shares")
    assert {k: v for k, v in newest.items() if k != "replies"} == {
        k: v for k, v in served.items() if k not in live
    }
    assert newest["replies"] == served["replies"]["id"]
    assert served["likes"]["totalItems"] == served["shares"]["totalItems"] == 0


def test_example__post_object_and_page_link_each_other(example: Path) -> None:
    obj = doc(example, "ap/posts/bakers-percentages")
    assert obj["type"] == "Note"
    assert obj["url"] == "https://blog.example/2024/02/bakers-percentages/"
    assert obj["content"].startswith("<p><strong>Baker")
    assert f'<a href="{obj["url"]}">' in obj["content"]
    assert all(tag["type"] == "Hashtag" for tag in obj["tag"])
    html = (example / "_site/2024/02/bakers-percentages/index.html").read_text()
    assert f'<link rel="alternate" type="{AP}" href="{obj["id"]}">' in html
    assert '<meta name="fediverse:creator" content="@mara@blog.example">' in html
    home = (example / "_site/index.html").read_text()
    assert f'<link rel="alternate" type="{AP}" href="https://blog.example/ap/actor">' in home


def test_example__content_types_of_every_document(example: Path) -> None:
    rules = header_rules(load_config(example))

    def content_type(path: str) -> str:
        return dict((k.lower(), v) for k, v in headers_for(path, rules))["content-type"]

    for path in [
        "/ap/actor",
        "/ap/outbox",
        "/ap/outbox-pages/1",
        "/ap/posts/bakers-percentages",
        "/ap/featured",
        "/ap/followers",
        "/ap/replies/bakers-percentages",
    ]:
        assert content_type(path) == AP
    assert content_type("/.well-known/webfinger") == "application/jrd+json"
    assert content_type("/nodeinfo/2.1").startswith('application/json; profile="http://nodeinfo')
    webfinger = dict(headers_for("/.well-known/webfinger", rules))
    assert webfinger["Access-Control-Allow-Origin"] == "*"
    assert "max-age=300" in webfinger["Cache-Control"]


def test_example__golden_documents(example: Path, golden) -> None:
    for path in [
        ".well-known/webfinger",
        "ap/actor",
        "ap/outbox",
        "ap/featured",
        "ap/posts/first-walk-of-the-year",
        "nodeinfo/2.1",
        ".well-known/nodeinfo",
        "_headers",
        "_redirects",
    ]:
        name = "example-site/" + path.replace("/", "__").lstrip("._") + ".txt"
        golden(name, (example / "_site" / path).read_text())


def test_build__private_key_never_in_output(make_site, tmp_path: Path) -> None:
    site = make_site(SITE)
    config = load_config(site)
    paths, private = generate_keys(site, config)
    (site / "static").mkdir()
    build(site, opts())
    header = private.strip().splitlines()[0]  # the PEM header line of a private key
    body = "".join(private.strip().splitlines()[1:-1])  # the base64 body of the key
    key = load_private_key(private)
    modulus = f"{key.private_numbers().p:x}"
    for rel, data in files(site / "_site").items():
        text = data.decode("latin-1")
        assert header not in text, rel
        assert body[:64] not in text and modulus not in text, rel
    assert oct(paths.private.stat().st_mode & 0o777) == "0o600"
    assert not (site / "_site" / ".fedipress").exists()


def test_build__fediverse_without_key_names_the_command(make_site) -> None:
    site = make_site(SITE)
    with pytest.raises(ConfigError) as info:
        build(site, opts())
    assert "no public key" in info.value.message
    assert f"fedipress keys generate {site}" in info.value.hint


def test_build__private_key_in_public_file_is_refused(make_site) -> None:
    site = make_site(SITE)
    _, private = generate_keys(site, load_config(site))
    (site / "fedipress.pub.pem").write_text(private)
    with pytest.raises(ConfigError, match="holds a private key"):
        build(site, opts())


def test_build__renamed_post_keeps_its_id_through_front_matter(make_site) -> None:
    site = make_site(SITE)
    generate_keys(site, load_config(site))
    build(site, opts(record_ids=True))
    before = doc(site, "ap/posts/hello")
    post = site / "content/posts/hello.md"
    post.write_text(
        post.read_text().replace("title: Hello", "title: Hello\nslug: greetings\nid: hello")
    )
    result = build(site, opts(record_ids=True, strict=True))
    after = doc(site, "ap/posts/hello")
    assert after["id"] == before["id"]
    assert after["url"] == "https://blog.example/posts/greetings/"
    assert result.warnings == () and result.redirects == ()
    assert not (site / "_site/ap/tombstones").exists()


def test_build__removed_id_gets_a_tombstone_and_a_warning(make_site) -> None:
    site = make_site(SITE)
    generate_keys(site, load_config(site))
    build(site, opts(record_ids=True))
    record = json.loads((site / "published-ids.json").read_text())
    assert set(record["ids"]) == {"hello", "second"}
    post = site / "content/posts/hello.md"
    post.rename(site / "content/posts/greetings.md")
    with pytest.raises(BuildFailed) as info:
        build(site, opts(record_ids=True, strict=True))
    assert "id 'hello' was published and is gone" in str(info.value)
    # A build that failed --strict wrote nothing: the record still lists only the old ids
    assert json.loads((site / "published-ids.json").read_text()) == record
    result = build(site, opts(record_ids=True))
    assert [w.message.split(":")[0] for w in result.warnings] == [
        "the post with id 'hello' was published and is gone"
    ]
    tomb = doc(site, "ap/tombstones/hello")
    assert tomb == {
        **tomb,
        "id": "https://blog.example/ap/posts/hello",
        "type": "Tombstone",
        "formerType": "Note",
    }
    assert "/ap/posts/hello /ap/tombstones/hello 410" in (site / "_site/_redirects").read_text()
    record = json.loads((site / "published-ids.json").read_text())
    assert record["ids"]["hello"]["deleted"].startswith("2025-06-01")
    assert "greetings" in record["ids"]
    # Bringing the post back revives its id; now 'greetings' is the one gone.
    (site / "content/posts/greetings.md").rename(post)
    result = build(site, opts(record_ids=True))
    assert [w.message.split(":")[0] for w in result.warnings] == [
        "the post with id 'greetings' was published and is gone"
    ]
    assert "/ap/posts/hello " not in (site / "_site/_redirects").read_text()
    assert doc(site, "ap/posts/hello")["type"] == "Note"


def test_check__federation_documents_checked(make_site) -> None:
    site = make_site(SITE)
    generate_keys(site, load_config(site))
    assert check(site, opts()).warnings == ()
    assert not (site / "published-ids.json").exists()  # check writes nothing


def test_cli__keys_generate_and_show(make_site) -> None:
    site = make_site(SITE)
    runner = CliRunner()
    result = runner.invoke(main, ["keys", "generate", str(site), "--print-private"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (site / ".fedipress/private.pem").read_text()
    assert "FEDIPRESS_PRIVATE_KEY" in result.stderr
    again = runner.invoke(main, ["keys", "generate", str(site)])
    assert again.exit_code == 1 and "--force" in again.stderr
    shown = runner.invoke(main, ["keys", "show", str(site)])
    assert shown.stdout.startswith("key id: https://blog.example/ap/actor#main-key\n")
    assert "BEGIN PUBLIC KEY" in shown.stdout and "PRIVATE" not in shown.stdout


SITE = """
-- fedipress.yaml --
title: Fedi Blog
base_url: https://blog.example/
fediverse:
  username: blog
  summary: A *test* blog.
-- content/posts/hello.md --
---
title: Hello
date: 2025-01-02
tags: [intro]
---
Hello, fediverse.
-- content/posts/second.md --
---
title: Second
date: 2025-02-03
---
Second post.
"""
