"""The Matrix messages of a post: title, summary and link taken from the published object,
plain and formatted, edits as m.replace, and one transaction id per change and room."""

from __future__ import annotations

from datetime import UTC, datetime

from fedipress.config import Config, FediverseConfig
from fedipress.documents.activitypub import build_object
from fedipress.documents.matrix import (
    edit_content,
    matrix_to,
    message_content,
    post_text,
    txn_id,
)
from fedipress.documents.post import Post

WHEN = datetime(2024, 3, 10, 17, 30, tzinfo=UTC)
ROOM = "https://matrix.example.org/_matrix/client/v3/rooms/%23blog%3Aexample.org"


def _object(post_type: str, **fields: object) -> dict[str, object]:
    config = Config.for_test(fediverse=FediverseConfig("blog", post_type=post_type))
    values: dict[str, object] = {
        "kind": "post",
        "updated": None,
        "tags": (),
        "summary": "",
        "source": "content/posts/walk.md",
        "title": "A walk <by the lake>",
        "slug": "walk",
        "url": "/posts/walk/",
        "uid": "walk",
        "date": WHEN,
        "content": "<p>First <em>paragraph</em> &amp; more.</p><p>Second one.</p>",
        "description": "A walk around the lake.",
    }
    values.update(fields)
    return build_object(config, Post(**values))  # type: ignore[arg-type]


def test_post_text__note_title_first_paragraph_and_link() -> None:
    text = post_text(_object("Note"))

    assert text.title == "A walk <by the lake>"
    assert text.summary == "First paragraph & more."
    assert text.url == "https://blog.example/posts/walk/"


def test_post_text__article_name_and_first_paragraph() -> None:
    # An Article's `summary` is only ever a content warning (FEDERATION.md §5.3): its text
    # starts, after the title line, with the post's first paragraph.
    text = post_text(_object("Article"))

    assert (text.title, text.summary) == ("A walk <by the lake>", "First paragraph & more.")


def test_post_text__article_content_warning_replaces_the_text() -> None:
    text = post_text(_object("Article", content_warning="Spiders"))

    assert (text.title, text.summary) == ("A walk <by the lake>", "Content warning: Spiders")
    assert "paragraph" not in message_content(text)["body"]


def test_post_text__content_warning_replaces_the_text() -> None:
    text = post_text(_object("Note", content_warning="Spiders"))

    assert text.summary == "Content warning: Spiders"
    assert "paragraph" not in message_content(text)["body"]


def test_post_text__long_paragraph_shortened_at_a_word() -> None:
    words = " ".join(f"word{n}" for n in range(200))
    text = post_text(_object("Note", content=f"<p>{words}</p>"))

    assert len(text.summary) <= 300 and text.summary.endswith("…")
    assert words.startswith(text.summary[:-1])


def test_message_content__plain_and_escaped_html() -> None:
    content = message_content(post_text(_object("Note")))
    link = "https://blog.example/posts/walk/"

    assert content["msgtype"] == "m.notice"
    assert content["body"] == f"A walk <by the lake>\nFirst paragraph & more.\n{link}"
    assert content["format"] == "org.matrix.custom.html"
    assert content["formatted_body"] == (
        f'<p><a href="{link}"><strong>A walk &lt;by the lake&gt;</strong></a></p>'
        f'<p>First paragraph &amp; more.</p><p><a href="{link}">{link}</a></p>'
    )


def test_edit_content__replaces_with_new_content_and_fallback() -> None:
    new = message_content(post_text(_object("Note")))

    edit = edit_content(new, "$original")

    assert edit["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$original"}
    assert edit["m.new_content"] == new
    assert edit["body"] == "* " + new["body"]
    assert edit["formatted_body"] == "* " + new["formatted_body"]


def test_txn_id__same_change_same_id_other_change_or_room_another() -> None:
    create = "https://blog.example/ap/posts/walk#create"
    update = "https://blog.example/ap/posts/walk#update-1234abcd-5678"

    assert txn_id(ROOM, create) == txn_id(ROOM, create)
    assert txn_id(ROOM, create) != txn_id(ROOM, update)
    assert txn_id(ROOM, create) != txn_id(ROOM + "x", create)
    assert txn_id(ROOM, create).isascii() and "/" not in txn_id(ROOM, create)


def test_matrix_to__percent_encoded() -> None:
    assert matrix_to("@mara:example.org") == "https://matrix.to/#/%40mara%3Aexample.org"
    assert matrix_to("#blog:example.org") == "https://matrix.to/#/%23blog%3Aexample.org"
