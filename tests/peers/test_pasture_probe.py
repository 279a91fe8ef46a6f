"""fediverse-pasture's verify_actor (by the author of bovine) probes `fedipress serve`.

One verification run against acct:blog@127.0.0.1:PORT, checked from several sides. pasture
resolves the handle with WebFinger, then, for each of its test actors, reads our actor and
POSTs to our inbox:
- alice and dean POST unsigned;
- bob, claire, emily and frank sign with draft-cavage rsa-sha256 (bovine's `signed_post`);
- claire and frank answer 401 to unsigned GETs of their actor, so our inbox can only verify
  them if its key fetch is signed (FEDERATION.md §4.1 GET, §4.4 step 4).
Last, it checks the WebFinger round trip from the actor back to its handle (FEDERATION.md §1.3).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from fedipress.app.keyfiles import generate_keys
from fedipress.config import load_config
from tests.e2e.serving import Serve
from tests.peers.pasture import Pasture, Verification

UNSIGNED = ("alice", "dean")
SIGNED = ("bob", "claire", "emily", "frank")
NEED_SIGNED_GET = ("claire", "frank")  # their actor answers 401 to unsigned GETs
# What pasture 0.2.25 sends: bovine's signed_post, with a lower-case Digest prefix.
PASTURE_CAVAGE = (
    "cavage rsa-sha256 [(request-target) host date digest content-type], Digest sha-256="
)


@pytest.fixture(scope="module")
def blog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    site = tmp_path_factory.mktemp("pasture-blog") / "site"
    (site / "content" / "posts").mkdir(parents=True)
    (site / "fedipress.yaml").write_text(
        "title: Probe\nbase_url: https://blog.example/\nfediverse:\n  username: blog\n"
    )
    generate_keys(site, load_config(site))
    serve = Serve(site).start()
    yield serve
    serve.stop()


@pytest.fixture(scope="module")
def pasture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pasture]:
    peer = Pasture(tmp_path_factory.mktemp("pasture")).start()
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def run(blog: Serve, pasture: Pasture) -> Verification:
    host = blog.url.split("//", 1)[1].rstrip("/")
    return pasture.verify(f"acct:blog@{host}")


def _actor(blog: Serve) -> str:
    return blog.url + "ap/actor"


def _inbox(blog: Serve) -> str:
    return blog.url + "ap/inbox"


def test_pasture__webfinger_round_trip(blog: Serve, run: Verification) -> None:
    # Given our handle acct:blog@127.0.0.1:PORT
    host = blog.url.split("//", 1)[1].rstrip("/")
    # When pasture resolves it, and later maps the actor back to a handle
    lookups = [e for e in run.sent if "/.well-known/webfinger?" in e.url]
    # Then both lookups asked for our handle and got 200, and both directions agree
    assert [e.url for e in lookups] == [
        f"{blog.url}.well-known/webfinger?resource=acct:blog@{host}"
    ] * 2
    assert [e.status for e in lookups] == [200, 200]
    assert f"Resolved to {_actor(blog)}" in run.steps
    assert f"computed acct uri acct:blog@{host}" in run.steps
    assert f"Retrieved id {_actor(blog)} using webfinger" in run.steps
    assert run.result["webfinger"] is True


@pytest.mark.parametrize("name", UNSIGNED)
def test_pasture__unsigned_post_is_refused(blog: Serve, run: Verification, name: str) -> None:
    # Given pasture's actor <name>, which POSTs without a signature
    # When it POSTs an activity to our inbox
    posts = run.posts_to(_inbox(blog), name)
    # Then we answer 401 with a JSON error, and pasture records the refusal
    assert [(e.variant, e.status) for e in posts] == [("unsigned", 401)], [e.body for e in posts]
    assert isinstance(json.loads(posts[0].body)["error"], str)
    assert run.result[name] == {"get_actor": True, "post_inbox": False}


@pytest.mark.parametrize("name", SIGNED)
def test_pasture__signed_post_is_accepted(
    blog: Serve, pasture: Pasture, run: Verification, name: str
) -> None:
    # Given pasture's actor <name>, which signs its POSTs with draft-cavage rsa-sha256
    # When it POSTs a Like to our inbox
    posts = run.posts_to(_inbox(blog), name)
    # Then we verify the signature (fetching its key from pasture) and answer 202
    assert [(e.variant, e.status) for e in posts] == [(PASTURE_CAVAGE, 202)], [
        (e.status, e.body) for e in posts
    ]
    assert posts[0].signature["keyid"] == f"{pasture.url}{name}#main"
    assert run.result[name] == {"get_actor": True, "post_inbox": True}


@pytest.mark.parametrize("name", SIGNED)
def test_pasture__our_key_fetch_is_signed(
    blog: Serve, pasture: Pasture, run: Verification, name: str
) -> None:
    # Given our inbox needs <name>'s key to verify its POST
    # When it fetches <name>'s actor from pasture
    fetches = [e for e in run.received if e.method == "GET" and e.url == pasture.url + name]
    # Then every fetch is a signed GET with our key id, covering (request-target), host, date
    assert fetches, f"our inbox never fetched {pasture.url}{name}"
    for fetch in fetches:
        signature = fetch.signature
        assert signature.get("keyid") == _actor(blog) + "#main-key", fetch.headers
        assert {"(request-target)", "host", "date"} <= set(signature["headers"].split())
    if name in NEED_SIGNED_GET:
        # and pasture, which checks it against the key at our keyId, let it through.
        assert [e.status for e in fetches] == [200] * len(fetches)
        key_reads = [e for e in run.sent_during(name) if e.url == _actor(blog) + "#main-key"]
        assert key_reads and all(e.status == 200 for e in key_reads)
