"""Which host serves a site, read from its answers, and what to change there for each kind of
problem `fedipress doctor` finds. Pure: headers in, text out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Problem = Literal[
    "headers",  # a media type, CORS or cache header missing or wrong
    "missing",  # a file of the build is not there (404)
    "redirect",  # an id URL redirects
    "tombstone",  # a removed id does not answer 410 with its Tombstone
    "inbox_route",  # the inbox's paths reach the static host, not the inbox
    "inbox_path",  # the inbox answers, but was given another path than the one requested
]

DEPLOY = "docs/deploy.md"
INBOX_PATHS = "`/ap/inbox`, `/ap/followers`, `/ap/health` and `/ap/hooks/…`"


@dataclass(frozen=True)
class Host:
    kind: str  # a key of the FIXES table, or "other"
    name: str  # for people: "Netlify"


# Response headers that give a host away: (header, value prefix, lower-cased) -> host.
_SIGNS: tuple[tuple[str, str, Host], ...] = (
    ("server", "netlify", Host("netlify", "Netlify")),
    ("x-nf-request-id", "", Host("netlify", "Netlify")),
    ("server", "cloudflare", Host("cloudflare", "Cloudflare")),
    ("server", "vercel", Host("vercel", "Vercel")),
    ("x-vercel-id", "", Host("vercel", "Vercel")),
    ("server", "github.com", Host("github", "GitHub Pages")),
    ("server", "amazons3", Host("s3", "Amazon S3")),
    ("server", "nginx", Host("nginx", "nginx")),
    ("server", "caddy", Host("caddy", "Caddy")),
    ("server", "apache", Host("apache", "Apache")),
    ("server", "simplehttp", Host("python", "a plain file server (Python's http.server)")),
)
OTHER = Host("other", "")


def detect_host(headers: Mapping[str, str]) -> Host:
    """The host behind an answer's headers (names lower-cased), or OTHER."""
    for name, prefix, host in _SIGNS:
        value = headers.get(name)
        if value is not None and value.strip().lower().startswith(prefix):
            return host
    return OTHER


_SERVER_RULES = {
    "nginx": "nginx: give the path its type with `types { } default_type …` and the "
    f"`add_header` lines of {DEPLOY}#nginx",
    "caddy": f"Caddy: add the `header` directives of {DEPLOY}#caddy",
    "apache": f"Apache: add the `ForceType` and `Header always set` lines of {DEPLOY}#apache",
}
_NO_RULES = f"{DEPLOY}#hosts-that-cannot-set-headers-per-path"

FIXES: dict[tuple[str, Problem], str] = {
    ("netlify", "headers"): "Netlify: the `_headers` file is missing from the publish folder: "
    f"publish `_site`, where `fedipress build` writes it ({DEPLOY}#netlify)",
    ("cloudflare", "headers"): "Cloudflare Pages: the `_headers` file is missing from the "
    f"output directory: set it to `_site` ({DEPLOY}#cloudflare-pages)",
    **{(kind, "headers"): text for kind, text in _SERVER_RULES.items()},
    ("github", "headers"): f"GitHub Pages sets no headers per path: serve the account from a "
    f"host that can ({_NO_RULES})",
    ("s3", "headers"): "Amazon S3: upload these files with an explicit `--content-type`, and "
    f"add CORS and cache headers with CloudFront ({_NO_RULES})",
    ("python", "headers"): "this plain file server ignores `_headers`: preview with "
    f"`fedipress serve`, and deploy to a host that applies the host rules ({DEPLOY})",
    ("other", "headers"): "serve it with the headers `fedipress build` writes to "
    f"`_site/_headers` ({DEPLOY} has them for Netlify, Cloudflare Pages, nginx, Caddy, Apache)",
    ("netlify", "missing"): f"Netlify: publish the whole `_site` folder ({DEPLOY}#netlify)",
    ("other", "missing"): "deploy the whole `_site` folder, `.well-known/` included (some "
    "upload tools skip folders whose name starts with a dot)",
    ("other", "redirect"): "ids must answer 200 where they are: turn off trailing-slash, `www`, "
    f"`https` and pretty-URL redirects for `/ap/` and `/.well-known/` ({DEPLOY}), or set "
    "`base_url` to the address the site really has",
    ("netlify", "tombstone"): "Netlify: the `_redirects` file is missing from the publish "
    f"folder, or has no `410` lines: publish `_site` as built ({DEPLOY}#netlify)",
    ("cloudflare", "tombstone"): "Cloudflare Pages does not honour the `410` lines of "
    f"`_redirects`: answer them with a Pages Function ({DEPLOY}#cloudflare-pages)",
    ("nginx", "tombstone"): f"nginx: add the `@tombstone` rule of {DEPLOY}#nginx",
    ("caddy", "tombstone"): f"Caddy: add the `@tombstone` rule of {DEPLOY}#caddy",
    ("apache", "tombstone"): f"Apache: add the `RewriteRule … [G]` lines of {DEPLOY}#apache",
    ("other", "tombstone"): "answer a removed post's id with `410 Gone` and the file in "
    f"`_site/ap/tombstones/`, as the `410` lines of `_site/_redirects` say ({DEPLOY})",
    ("netlify", "inbox_route"): "Netlify: set `fediverse.inbox_proxy` to the inbox "
    "function's origin and deploy again: `_redirects` then proxies the inbox's paths "
    f"({DEPLOY}#running-the-inbox)",
    ("cloudflare", "inbox_route"): "Cloudflare Pages proxies only to its own paths: route "
    f"{INBOX_PATHS} with a Pages Function or a Worker ({DEPLOY}#cloudflare-pages)",
    ("nginx", "inbox_route"): "nginx: add `location = /ap/inbox { include "
    f"snippets/fedipress-inbox.conf; }} and the same for the other inbox paths ({DEPLOY}#nginx)",
    ("caddy", "inbox_route"): f"Caddy: add the `@inbox` matcher with `reverse_proxy` "
    f"({DEPLOY}#caddy)",
    ("apache", "inbox_route"): f"Apache: add the `ProxyPass` lines of the inbox's paths "
    f"({DEPLOY}#apache)",
    ("vercel", "inbox_route"): "Vercel: add the rewrites of the inbox's paths to `/api/inbox` "
    f"in `vercel.json` ({DEPLOY}#netlify-and-an-inbox-on-vercel)",
    ("python", "inbox_route"): "a plain file server has no inbox: `fedipress serve` runs "
    f"one beside the site; a deployed site needs the inbox function ({DEPLOY}#running-the-inbox)",
    ("other", "inbox_route"): f"route {INBOX_PATHS} to the inbox function "
    f"({DEPLOY}#running-the-inbox)",
    ("nginx", "inbox_path"): "nginx: the inbox got another path than the one requested: write "
    "`proxy_pass http://127.0.0.1:8001;` with nothing after the port, so the path passes "
    f"through as received ({DEPLOY}#nginx)",
    ("other", "inbox_path"): "the inbox got another path than the one requested: make the "
    "proxy in front of it forward the path as received (no prefix, no trailing slash, no "
    f"rewrite), which is also what the sender's signature covers ({DEPLOY}#running-the-inbox)",
}


def fix_for(host: Host, problem: Problem) -> str:
    """What to change on `host` for `problem`; the general advice where the host has none of
    its own (a host's name then leads it, so the reader knows which settings to look at)."""
    own = FIXES.get((host.kind, problem))
    if own is not None:
        return own
    general = FIXES[("other", problem)]
    return f"{host.name}: {general}" if host.name else general
