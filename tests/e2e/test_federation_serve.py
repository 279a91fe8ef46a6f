"""`fedipress serve` answers the federation documents as a deployed site would, and
WebFinger as a server that sees the query."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serving import Serve

from fedipress.app.keyfiles import generate_keys
from fedipress.config import load_config

EXAMPLE = Path(__file__).parent.parent.parent / "example-site"
AP = "application/activity+json"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Serve, httpx.Client]]:
    site = tmp_path_factory.mktemp("fedserve") / "site"
    shutil.copytree(EXAMPLE, site, ignore=shutil.ignore_patterns("_site", ".fedipress"))
    serve = Serve(site).start()
    with httpx.Client(base_url=serve.url, timeout=10) as client:
        yield serve, client
    serve.stop()


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/ap/actor", AP),
        ("/ap/outbox", AP),
        ("/ap/outbox-pages/1", AP),
        ("/ap/posts/bakers-percentages", AP),
        ("/ap/featured", AP),
        ("/.well-known/nodeinfo", "application/json"),
        (
            "/nodeinfo/2.1",
            'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.1#"',
        ),
    ],
)
def test_serve__federation_documents_have_their_media_types(served, path, media_type) -> None:
    serve, client = served
    response = client.get(path, headers={"Accept": AP})
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    body = response.json()
    if path.startswith("/ap/"):
        # Built with the server's own address: ids are its URLs, so they resolve locally.
        assert body["id"] == serve.url.rstrip("/") + path


def test_serve__webfinger_sees_the_query(served) -> None:
    serve, client = served
    host = serve.url.split("//", 1)[1].rstrip("/")
    ok = client.get("/.well-known/webfinger", params={"resource": f"acct:mara@{host}"})
    assert ok.status_code == 200
    assert ok.headers["content-type"] == "application/jrd+json"
    assert ok.headers["access-control-allow-origin"] == "*"
    jrd = ok.json()
    assert jrd["subject"] == f"acct:mara@{host}"
    actor = next(link["href"] for link in jrd["links"] if link["rel"] == "self")
    assert client.get(actor).json()["id"] == actor
    assert client.get("/.well-known/webfinger").status_code == 400
    assert client.get("/.well-known/webfinger", params={"resource": "nonsense"}).status_code == 400
    other = client.get("/.well-known/webfinger", params={"resource": f"acct:other@{host}"})
    assert other.status_code == 404
    assert json.loads(other.content) == {"error": "no such account here"}


def test_serve__inbox_and_webfinger_refuse_another_host_name(served) -> None:
    """The inbox may fetch private addresses: a rebound name must not reach it."""
    _serve, client = served
    evil = {"Host": "evil.example", "Content-Type": AP}
    assert client.post("/ap/inbox", headers=evil, content=b"{}").status_code == 421
    assert client.get("/ap/health", headers=evil).status_code == 421
    assert client.get("/.well-known/webfinger", headers=evil).status_code == 421
    # The same requests under the server's own name reach the inbox (unsigned: refused there).
    own = client.post("/ap/inbox", headers={"Content-Type": AP}, content=b"{}")
    assert own.status_code not in (421, 404) and own.status_code < 500


def test_serve__tombstone_answers_410(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "content/posts").mkdir(parents=True)
    (site / "fedipress.yaml").write_text(
        "title: T\nbase_url: https://blog.example/\nfediverse:\n  username: blog\n"
    )
    (site / "published-ids.json").write_text(
        '{"ids": {"gone": {"type": "Note", "published": "2024-01-01T00:00:00+00:00",'
        ' "deleted": "2024-02-01T00:00:00+00:00"}}}'
    )
    generate_keys(site, load_config(site))
    serve = Serve(site).start()
    try:
        with httpx.Client(base_url=serve.url, timeout=10) as client:
            response = client.get("/ap/posts/gone")
            assert response.status_code == 410
            assert response.headers["content-type"] == AP
            assert response.json()["type"] == "Tombstone"
            assert response.json()["id"] == serve.url.rstrip("/") + "/ap/posts/gone"
            assert client.get("/ap/posts/never-was").status_code == 404
    finally:
        serve.stop()
