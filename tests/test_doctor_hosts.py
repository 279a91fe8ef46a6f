"""Which host a site is on, from its answers' headers, and the fix `fedipress doctor` gives
there for each kind of problem."""

from __future__ import annotations

import pytest

from fedipress.app.doctor_hosts import FIXES, OTHER, Host, detect_host, fix_for


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        ({"server": "Netlify", "x-nf-request-id": "01J"}, "netlify"),
        ({"x-nf-request-id": "01J"}, "netlify"),
        ({"server": "cloudflare", "cf-ray": "8a1b"}, "cloudflare"),
        ({"server": "Vercel"}, "vercel"),
        ({"x-vercel-id": "fra1::abc"}, "vercel"),
        ({"server": "GitHub.com"}, "github"),
        ({"server": "AmazonS3"}, "s3"),
        ({"server": "nginx/1.24.0 (Ubuntu)"}, "nginx"),
        ({"server": "Caddy"}, "caddy"),
        ({"server": "Apache/2.4.58 (Debian)"}, "apache"),
        ({"server": "SimpleHTTP/0.6 Python/3.11.7"}, "python"),
        ({"server": "uvicorn"}, "other"),
        ({}, "other"),
    ],
)
def test_detect_host__from_response_headers(headers: dict[str, str], kind: str) -> None:
    assert detect_host(headers).kind == kind


def test_fix_for__the_hosts_own_words_or_the_general_fix_named_for_it() -> None:
    netlify = detect_host({"server": "Netlify"})
    assert fix_for(netlify, "headers").startswith(
        "Netlify: the `_headers` file is missing from the publish folder"
    )
    # No words of its own for a redirect: the general fix, led by the host's name
    assert fix_for(netlify, "redirect") == "Netlify: " + FIXES[("other", "redirect")]
    assert fix_for(OTHER, "redirect") == FIXES[("other", "redirect")]
    assert fix_for(Host("nginx", "nginx"), "inbox_path").startswith("nginx: ")
    # Every problem has a general fix, and every fix points at the docs or says what to do
    problems = {problem for _kind, problem in FIXES}
    assert all(("other", problem) in FIXES for problem in problems)
