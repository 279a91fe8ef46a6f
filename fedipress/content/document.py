"""Turn one source file's text into a Post: front matter, Markdown, summary, links. Pure."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from fedipress.config import Config
from fedipress.content.markdown import (
    Renderer,
    plain_text,
    render_markdown,
    strip_more,
    summarise,
    table_of_contents,
)
from fedipress.documents.frontmatter import split_front_matter
from fedipress.documents.post import (
    Kind,
    Post,
    Tag,
    parse_meta,
    render_permalink,
    slug_from_filename,
    slugify,
)

# Links to check and rewrite: everything but queries and other sites (`#anchor` links
# within the post are checked too).
_HREF = re.compile(r'(?:href|src)="(?!https?:|mailto:|data:|tel:|//)([^"?][^"]*)"')
_ID = re.compile(r'\sid="([^"]+)"')
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Source:
    """A content file found on disk. Paths are POSIX, relative to the site folder."""

    path: str
    kind: Kind
    bundle: str = ""  # the folder of a page bundle ('content/posts/trip'), else ''
    resources: tuple[str, ...] = ()  # other files of the bundle, relative to it

    @property
    def default_slug(self) -> str:
        p = PurePosixPath(self.path)
        return slug_from_filename(PurePosixPath(self.bundle).name if self.bundle else p.stem)


def parse_document(text: str, source: Source, config: Config, md: Renderer) -> Post:
    """Parse and render one file. Raises ContentError with the file, line and column."""
    fm = split_front_matter(text, source.path)
    meta = parse_meta(fm.meta, fm.positions, source.kind, source.default_slug, config.tz)
    rendered = render_markdown(md, fm.body)
    content = strip_more(rendered)
    if source.kind == "post":
        url = render_permalink(config.permalink, meta.slug, meta.date)
    else:
        url = f"/{meta.slug}/"
    summary = summarise(rendered, meta.summary)
    description = meta.description or plain_text(summary, limit=200)
    if meta.content_warning:
        # The text behind a warning stays behind it everywhere: lists, feeds and link
        # previews show the warning. A summary or description written out is shown as is.
        warning = f"Content warning: {meta.content_warning}"
        if not meta.summary:
            summary = f'<p class="content-warning">{html.escape(warning, quote=False)}</p>'
        if not meta.description:
            description = warning
    return Post(
        kind=source.kind,
        source=source.path,
        title=meta.title,
        slug=meta.slug,
        url=url,
        uid=meta.uid,
        date=meta.date,
        updated=meta.updated,
        tags=tuple(Tag(name, slugify(name)) for name in meta.tags),
        summary=summary,
        description=description,
        content=content,
        draft=meta.draft,
        image=meta.image,
        image_alt=meta.image_alt,
        pinned=meta.pinned,
        post_type=meta.post_type,
        content_warning=meta.content_warning,
        sensitive=meta.sensitive,
        images=meta.images,
        template=meta.template,
        extra=meta.extra,
        bundle=source.bundle,
        resources=source.resources,
        links=tuple(dict.fromkeys(_HREF.findall(content))),
        word_count=len(_WORD.findall(plain_text(content))),
        toc=table_of_contents(content) if meta.toc else (),
        anchors=tuple(dict.fromkeys(html.unescape(a) for a in _ID.findall(content))),
        warnings=meta.warnings,
    )
