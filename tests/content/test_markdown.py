from __future__ import annotations

import pytest

from fedipress.content.markdown import make_markdown, plain_text, render_markdown, summarise


@pytest.fixture(scope="module")
def md():
    return make_markdown()


def test_render__table_strikethrough_tasks(md) -> None:
    html = render_markdown(
        md, "| a | b |\n|---|---|\n| 1 | 2 |\n\n~~old~~\n\n- [x] done\n- [ ] todo\n"
    )
    assert "<table>" in html and "<td>1</td>" in html
    assert "<s>old</s>" in html
    assert 'class="task-list-item-checkbox"' in html and "checked" in html


def test_render__footnotes(md) -> None:
    html = render_markdown(md, "Text[^1].\n\n[^1]: The note.\n")
    assert 'class="footnote-ref"' in html
    assert "The note." in html and 'class="footnotes"' in html


def test_render__heading_anchors(md) -> None:
    html = render_markdown(md, "## A Section Title\n\n### Sub-part two\n")
    assert '<h2 id="a-section-title">' in html
    assert '<h3 id="sub-part-two">' in html


def test_render__code_is_highlighted_with_classes(md) -> None:
    html = render_markdown(md, "```python\ndef f(x):\n    return x  # hi\n```\n")
    assert '<pre class="highlight" data-lang="python"><code class="language-python">' in html
    assert '<span class="k">def</span>' in html
    assert '<span class="c1"># hi</span>' in html
    assert "style=" not in html  # colours come from the theme's stylesheet


def test_render__unknown_language_is_escaped_plain(md) -> None:
    html = render_markdown(md, "```nosuchlang\n<b>x</b>\n```\n")
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "language-nosuchlang" in html


def test_render__language_name_cannot_inject_markup(md) -> None:
    html = render_markdown(md, '```py"><script>\nx\n```\n')
    assert "<script>" not in html


def test_render__images_lazy(md) -> None:
    assert 'loading="lazy"' in render_markdown(md, "![alt text](a.png)\n")


def test_summarise__front_matter_summary_wins() -> None:
    assert (
        summarise("<p>First</p><!-- more --><p>x</p>", "Mine & yours") == "<p>Mine &amp; yours</p>"
    )


def test_summarise__more_marker() -> None:
    html = "<p>One</p>\n<p>Two</p>\n<!-- more -->\n<p>Three</p>"
    assert summarise(html) == "<p>One</p>\n<p>Two</p>"


def test_summarise__first_paragraph() -> None:
    assert (
        summarise("<h2>T</h2>\n<p>First <em>para</em></p>\n<p>Second</p>")
        == "<p>First <em>para</em></p>"
    )


def test_plain_text__limit_cuts_on_word() -> None:
    assert plain_text("<p>alpha beta gamma delta</p>", limit=12) == "alpha beta…"
    assert plain_text("<p>a &amp; b</p>") == "a & b"


TRICKY = [
    "- [x] done\n- [ ] todo\n\n* [ ] star task\n",
    "Text[^1] and[^n].\n\n[^1]: note\n[^n]: other *em*\n",
    '~~old~~ **bold** _em_ `a<b` <span>raw</span> & &amp; "q" <https://x.org>\n',
    "| a | b |\n|:--|--:|\n| 1 | 2 |\n| `x|y` | ~~z~~ |\n",
    '![img](a.png "t") and <img src="b.png" loading="eager" alt="">\n',
    "## Über uns\n\n## Über uns\n\n### A `code` heading\n\n#### Four\n\n##### Five\n",
    "```\nplain <b>\n```\n\n```python\nx = '<p>'\n```\n\n    indented\n\n```nosuchlang\nq\n```\n",
    "Hard  \nbreak\\\nx\n\n***\n\n1. a\n2. b\n\n> q\n>\n> - l\n\n"
    "Setext\n===\n\n[ref]\n\n[ref]: https://x.y 'T'\n",
    "<div>\n*not md*\n</div>\n\n<!-- more -->\n\nAfter.\n",
]


def test_engines__rust_and_python_give_identical_html() -> None:
    """The `fast` extra must never change a site's HTML, only its build time."""
    import random

    from bench.build import post_body

    python, rust = make_markdown("python"), make_markdown("rust")
    rng = random.Random(7)
    corpus = TRICKY + [post_body(rng, i) for i in range(60)]
    for text in corpus:
        assert render_markdown(rust, text) == render_markdown(python, text), text[:80]


def test_render__table_alignment_uses_classes_not_styles(md) -> None:
    html = render_markdown(md, "| a | b | c |\n|:--|:-:|--:|\n| 1 | 2 | 3 |\n")
    assert "style=" not in html
    assert '<th class="align-left">a</th>' in html
    assert '<td class="align-right">3</td>' in html
