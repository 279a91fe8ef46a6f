"""The documentation is checked against the code: every CLI command and option appears in
docs/cli.md, every `fediverse` key in docs/federation.md, every host rule in the server
configs of docs/deploy.md, and netlify.toml builds the example site. The deploy checker
script of docs/deploy.md is run against a built site served on 127.0.0.1."""

from __future__ import annotations

import configparser
import dataclasses
import json
import re
import shlex
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from fedipress.adapters.aws_lambda import is_scheduled_event
from fedipress.cli.main import main
from fedipress.config import Config, FediverseConfig, load_config
from fedipress.documents.urls import DELIVER_HOOK_PATH, DYNAMIC_PATHS, Urls
from fedipress.hosting import header_rules, redirect_rules
from fedipress.inbox.service import InboxOptions

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
OWN_DOCS = [DOCS / "cli.md", DOCS / "federation.md", DOCS / "deploy.md", ROOT / "FEDERATION.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _code_blocks(path: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(path.read_text()) if lang == language]


def _sections(text: str) -> dict[str, str]:
    """'## `fedipress build`' and '### `fedipress keys show`' headings -> their text."""
    parts = re.split(r"^#{2,3} `(fedipress[^`]*)`\s*$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def _commands() -> Iterator[tuple[str, click.Command, click.Context]]:
    """Every command path of the CLI, with a context to read its parameters."""

    def walk(command: click.Command, path: str, parent: click.Context | None):
        ctx = click.Context(command, info_name=path.rsplit(" ", 1)[-1], parent=parent)
        yield path, command, ctx
        if isinstance(command, click.Group):
            for name in sorted(command.list_commands(ctx)):
                sub = command.get_command(ctx, name)
                assert sub is not None
                yield from walk(sub, f"{path} {name}", ctx)

    yield from walk(main, "fedipress", None)


def _long_options(command: click.Command, ctx: click.Context) -> set[str]:
    names: set[str] = set()
    for param in command.get_params(ctx):
        if isinstance(param, click.Option):
            names |= {o for o in (*param.opts, *param.secondary_opts) if o.startswith("--")}
    return names


# --- docs/cli.md -------------------------------------------------------------------------


def test_cli_docs__every_command_has_help_text() -> None:
    for path, command, _ctx in _commands():
        assert (command.help or "").strip(), f"'{path}' has no help text"


def test_cli_docs__every_command_and_option_is_documented() -> None:
    sections = _sections((DOCS / "cli.md").read_text())
    shared = _long_options(main, click.Context(main))
    for path, command, ctx in _commands():
        assert path in sections, f"docs/cli.md has no '## `{path}`' section"
        for option in sorted(_long_options(command, ctx)):
            # -q/-v/--debug/--help are on every command: the top section documents them.
            where = sections["fedipress"] if option in shared else sections[path]
            assert re.search(rf"`{option}\b", where), f"'{path} {option}' is not in docs/cli.md"
    documented = set(sections)
    actual = {path for path, _command, _ctx in _commands()}
    assert documented <= actual, (
        f"docs/cli.md documents commands that do not exist: {documented - actual}"
    )


def _examples() -> list[list[str]]:
    """The example command lines of docs/cli.md, without shell pipes and comments."""
    found = []
    for block in _code_blocks(DOCS / "cli.md", ""):
        for line in block.splitlines():
            if not line.startswith("fedipress ") or "[" in line:
                continue  # a synopsis such as `fedipress build [OPTIONS] [SITE]`
            words = shlex.split(line, comments=True)
            for stop in ("|", ">", "&&", ";"):
                if stop in words:
                    words = words[: words.index(stop)]
            found.append(words[1:])
    return found


def _parse(args: list[str]) -> tuple[str, dict[str, object]]:
    """Resolve `args` (after `fedipress`) to a command and parse its options, as click would
    before running it; raises click's usage errors. Returns the command path and params."""
    ctx = click.Context(main, info_name="fedipress")
    command: click.Command = main
    path = "fedipress"
    while isinstance(command, click.Group):
        assert args and not args[0].startswith("-"), f"no command in {args}"
        sub = command.get_command(ctx, args[0])
        assert sub is not None, f"no command '{args[0]}' in {path}"
        path, args = f"{path} {args[0]}", args[1:]
        ctx = click.Context(sub, info_name=path.rsplit(" ", 1)[-1], parent=ctx)
        command = sub
    parsed = command.make_context(path.rsplit(" ", 1)[-1], list(args), parent=ctx.parent)
    return path, parsed.params


def test_cli_docs__examples_parse() -> None:
    examples = _examples()
    assert len(examples) >= 8
    for args in examples:
        path, params = _parse(args)
        assert params, f"{path}: {args}"
    with pytest.raises(click.UsageError):
        _parse(["build", "--no-such-option"])


def test_cli_docs__exit_codes_are_the_real_ones(tmp_path: Path) -> None:
    text = (DOCS / "cli.md").read_text()
    runner = CliRunner()
    usage = runner.invoke(main, ["build", "--no-such-option"])
    no_config = runner.invoke(main, ["build", str(tmp_path)])
    ok = runner.invoke(main, ["--version"])
    for result, code in ((usage, 2), (no_config, 1), (ok, 0)):
        assert result.exit_code == code, result.output
        assert f"| `{code}` |" in text


# --- docs/federation.md ------------------------------------------------------------------


def _federation_key_rows() -> dict[str, list[str]]:
    rows = {}
    for line in (DOCS / "federation.md").read_text().splitlines():
        match = re.match(r"^\| `([a-z_]+)` \|", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in line.strip("|").split("|")]
    return rows


def test_federation_docs__every_fediverse_key_with_its_default() -> None:
    rows = _federation_key_rows()
    for field in dataclasses.fields(FediverseConfig):
        assert field.name in rows, f"fediverse.{field.name} is not in docs/federation.md"
        default_cell = rows[field.name][1]
        default = field.default
        if isinstance(default, bool):
            assert default_cell == f"`{str(default).lower()}`", field.name
        elif isinstance(default, str) and default:
            assert f"`{default}`" in default_cell, field.name
        elif field.name != "username":
            assert default_cell.startswith(("none", '`""`')) or "host" in default_cell, field.name
    assert "required" in rows["username"][1]


def test_federation_docs__url_layout_is_the_real_one() -> None:
    config = Config.for_test(fediverse=FediverseConfig("blog"))
    urls = Urls(config)
    text = (DOCS / "federation.md").read_text()
    origin = "https://blog.example"
    for url in (
        urls.actor(),
        urls.outbox(),
        urls.outbox_page(1),
        urls.post("hello").replace("hello", "<uid>"),
        urls.replies("hello").replace("hello", "<uid>"),
        urls.featured(),
        urls.followers(),
        urls.following(),
        urls.webfinger(),
        urls.nodeinfo_discovery(),
        urls.nodeinfo("2.1"),
        urls.nodeinfo("2.0"),
        urls.host_meta(),
    ):
        path = url.removeprefix(origin)
        assert f"`{path}" in text, f"{path} is not in docs/federation.md"
    assert urls.key_id().removeprefix(origin).endswith("#main-key")
    assert "#main-key" in text


# --- netlify.toml ------------------------------------------------------------------------


def test_netlify_toml__builds_the_example_site() -> None:
    netlify = tomllib.loads((ROOT / "netlify.toml").read_text())
    build = netlify["build"]
    steps = [shlex.split(step) for step in build["command"].split("&&")]
    assert ["pip", "install", "."] in steps, "Netlify must install fedipress from this checkout"
    fedipress = [s for s in steps if s[:2] == ["fedipress", "build"]]
    assert len(fedipress) == 1
    path, params = _parse(fedipress[0][1:])
    assert path == "fedipress build"
    site = params["site"]
    assert isinstance(site, Path)
    assert site == Path("example-site")
    assert load_config(ROOT / site).fediverse is not None, "the example site is an account"
    output = params["output"] or site / "_site"
    assert isinstance(output, Path) and build["publish"] == output.as_posix()
    version = tuple(int(n) for n in build["environment"]["PYTHON_VERSION"].split("."))
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    minimum = pyproject["project"]["requires-python"].removeprefix(">=")
    assert version >= tuple(int(n) for n in minimum.split("."))
    # Netlify reads the build's own _headers and _redirects; rules here would compete.
    assert "headers" not in netlify and "redirects" not in netlify


# --- docs/deploy.md ----------------------------------------------------------------------


@pytest.mark.parametrize("language", ["nginx", "caddyfile", "apache"])
def test_deploy_docs__server_config_has_every_host_rule(language: str) -> None:
    config = Config.for_test(fediverse=FediverseConfig("blog", inbox_proxy="https://fn.example"))
    text = "\n".join(_code_blocks(DOCS / "deploy.md", language)).replace('\\"', '"')
    assert text, f"docs/deploy.md has no {language} block"
    for rule in header_rules(config):
        for name, value in rule.headers:
            assert value in text, f"{language}: {rule.pattern} {name}: {value}"
        # The rule's path, without its wildcard or placeholder part.
        literal = re.split(r"[*:]", rule.pattern)[0].rstrip("/") or "/"
        assert literal in text, f"{language}: no rule for {rule.pattern}"
    for path in DYNAMIC_PATHS:
        assert path in text, f"{language}: no proxy for {path}"
    assert "/ap/tombstones/" in text and "410" in text, f"{language}: no Tombstones"
    proxies = [r for r in redirect_rules(config) if r.status == 200]
    assert len(proxies) == len(DYNAMIC_PATHS)


def test_deploy_docs__netlify_example_is_this_repos_netlify_toml() -> None:
    blocks = _code_blocks(DOCS / "deploy.md", "toml")
    ours = tomllib.loads((ROOT / "netlify.toml").read_text())
    assert tomllib.loads(blocks[0]) == ours
    own_site = tomllib.loads(blocks[1])
    assert own_site["build"]["publish"] == "_site"


# The deploy guides, each of which ends by running `fedipress doctor`.
GUIDES = (
    "## Netlify",
    "## Cloudflare Pages",
    "## nginx",
    "## Caddy",
    "## Apache",
    "## Hosts that cannot set headers per path",
    "### Netlify and an inbox on AWS Lambda",
    "### Netlify and an inbox on Vercel",
    "### Self-hosting with `fedipress inbox serve`",
)


def _deploy_sections() -> dict[str, str]:
    text = (DOCS / "deploy.md").read_text()
    parts = re.split(r"^(#{2,4} .+)$", FENCE.sub("", text), flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_deploy_docs__every_guide_checks_with_the_doctor() -> None:
    sections = _deploy_sections()
    for heading in GUIDES:
        assert "fedipress doctor" in sections[heading], f"{heading} does not run the doctor"
    # The doctor replaced the checking script, and schedules the uptime monitor
    assert not _code_blocks(DOCS / "deploy.md", "python")
    assert "uptime" not in (DOCS / "deploy.md").read_text().lower()


def test_deploy_docs__doctor_and_deliver_commands_parse() -> None:
    commands = []
    blocks = _code_blocks(DOCS / "deploy.md", "sh") + _code_blocks(DOCS / "deploy.md", "ini")
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.removeprefix("ExecStart=").split(" #")[0]
            words = shlex.split(line) if "fedipress " in line else []
            # The command itself, without what the shell does with its output
            cut = [i for i, w in enumerate(words) if w in ("|", "&&") or w.startswith(">")]
            words = words[: cut[0]] if cut else words
            if len(words) > 1 and words[0].endswith("fedipress"):
                if words[1] in ("doctor", "deliver"):
                    commands.append(words[1:])
    assert sum(c[0] == "doctor" for c in commands) >= 2
    assert sum(c[0] == "deliver" for c in commands) >= 1
    for args in commands:
        path, _params = _parse(args)
        assert path in ("fedipress doctor", "fedipress deliver")


def _json_block(marker: str) -> dict[str, object]:
    """The one JSON block of deploy.md holding `marker`, list items' indented ones included."""
    text = (DOCS / "deploy.md").read_text()
    blocks = re.findall(r"^( *)```json\n(.*?)^\1```", text, re.MULTILINE | re.DOTALL)
    (found,) = [textwrap.dedent(body) for _indent, body in blocks if marker in body]
    return json.loads(found)


def test_deploy_docs__schedules_reach_the_drain() -> None:
    # Vercel Cron calls the delivery hook, a rewrite sends that path to the function, and the
    # function may run longer than a drain's budget
    vercel: dict[str, Any] = _json_block('"crons"')
    (cron,) = vercel["crons"]
    assert cron["path"] == DELIVER_HOOK_PATH
    sources = [rule["source"].split(":")[0] for rule in vercel["rewrites"]]
    assert any(DELIVER_HOOK_PATH.startswith(source) for source in sources)
    assert vercel["functions"]["api/inbox.py"]["maxDuration"] >= InboxOptions().drain_budget + 10
    # EventBridge Scheduler's input, its keywords filled in, is a schedule to the handler
    target: dict[str, Any] = _json_block('"RoleArn"')
    filled = (
        target["Input"]
        .replace("<aws.scheduler.scheduled-time>", "2024-03-10T12:05:00Z")
        .replace(
            "<aws.scheduler.schedule-arn>",
            "arn:aws:scheduler:eu-central-1:123456789012:schedule/default/blog-inbox-deliver",
        )
    )
    assert is_scheduled_event(json.loads(filled))
    assert target["Arn"].endswith(":function:blog-inbox")
    # The systemd timer starts the oneshot service of the same name
    units = [_ini(block) for block in _code_blocks(DOCS / "deploy.md", "ini")]
    (timer,) = [unit for unit in units if unit.has_section("Timer")]
    assert timer["Timer"]["OnUnitActiveSec"] == "5min"
    (service,) = [
        u for u in units if " deliver " in u.get("Service", "ExecStart", fallback="") + " "
    ]
    assert service["Service"]["Type"] == "oneshot"


def _ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


# --- links between the documents -----------------------------------------------------------


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@pytest.mark.parametrize("doc", OWN_DOCS, ids=lambda p: p.name)
def test_docs__relative_links_resolve(doc: Path) -> None:
    text = FENCE.sub("", doc.read_text())
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links
    for link in links:
        if re.match(r"^[a-z]+:", link):
            continue
        target, _, fragment = link.partition("#")
        path = (doc.parent / target).resolve() if target else doc
        assert path.is_file(), f"{doc.name}: broken link {link}"
        if fragment and path.suffix == ".md":
            headings = re.findall(r"^#{1,6} (.+)$", FENCE.sub("", path.read_text()), re.M)
            assert fragment in {_anchor(h) for h in headings}, f"{doc.name}: no anchor {link}"


# --- FEDERATION.md § references ------------------------------------------------------------

SECTION = re.compile(r"§(\d+(?:\.\d+)*)(?:-(\d+(?:\.\d+)*))?(?:\s+item\s+(\d+))?")
# After one reference, more sections of the same file ("FEDERATION.md §5.5, §5.6"), also
# across the line break of a comment.
MORE = re.compile(r"(?:,|\s+and|\s+or)\s*(?:(?:#|--|//)\s*)?(?=§\d)")
REFERRING = (".py", ".md", ".html", ".sql", ".mjs", ".js")


def _interop_sections() -> dict[str, set[int]]:
    """Section number ('4.4') -> the item numbers of the numbered list in that section (an
    empty set without one), from the numbered headings of FEDERATION.md."""
    text = FENCE.sub("", (ROOT / "FEDERATION.md").read_text())
    parts = re.split(r"^#{2,4} §(\d+(?:\.\d+)*) .*$", text, flags=re.MULTILINE)
    sections: dict[str, set[int]] = {}
    for number, body in zip(parts[1::2], parts[2::2], strict=True):
        assert number not in sections, f"FEDERATION.md has two sections §{number}"
        sections[number] = {int(n) for n in re.findall(r"^(\d+)\. ", body, re.MULTILINE)}
    return sections


def _resolves(sections: dict[str, set[int]], number: str, item: str | None) -> bool:
    if item is not None:
        return int(item) in sections.get(number, set())
    if number in sections:
        return True
    # 10.9 may also be item 9 of the numbered list in section 10
    parent, _, last = number.rpartition(".")
    return bool(parent) and int(last) in sections.get(parent, set())


def _federation_refs(text: str) -> Iterator[tuple[str, str | None]]:
    """(number, item) of every `FEDERATION.md §…` reference, lists and ranges included."""
    for start in re.finditer(r"FEDERATION\.md\s+(?=§\d)", text):
        pos = start.end()
        while match := SECTION.match(text, pos):
            yield match[1], match[3]
            if match[2]:
                yield match[2], None
            more = MORE.match(text, match.end())
            if not more:
                break
            pos = more.end()


def _referring_files() -> Iterator[Path]:
    yield from ROOT.glob("*.md")
    for folder in ("fedipress", "docs", "tests", "themes"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in REFERRING and "node_modules" not in path.parts:
                yield path


def test_federation_md__every_section_reference_resolves() -> None:
    # Code and docs cite the interop notes as "FEDERATION.md §4.4", "FEDERATION.md §10 item 2"
    # or "FEDERATION.md §10.9".
    sections = _interop_sections()
    assert {"1.3", "2.1", "4.4", "5.5", "10", "12"} <= set(sections)
    checked = 0
    for path in _referring_files():
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(ROOT)
        outside = re.search(r"interop-spec\.md", text)
        assert not outside, f"{where} points at a file outside the repository"
        for number, item in _federation_refs(text):
            ref = f"§{number}" + (f" item {item}" if item else "")
            assert _resolves(sections, number, item), f"{where}: FEDERATION.md has no {ref}"
            checked += 1
    assert checked >= 100


def test_federation_md__interop_notes_cross_references_resolve() -> None:
    # Inside the notes, a section sign and a number point at another section of the file.
    sections = _interop_sections()
    text = (ROOT / "FEDERATION.md").read_text().split("## Interop notes", 1)[1]
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        for match in SECTION.finditer(line):
            ref = match[0]
            assert _resolves(sections, match[1], match[3]), f"FEDERATION.md: no section {ref}"
            if match[2]:
                assert _resolves(sections, match[2], None), f"FEDERATION.md: no section {ref}"
