"""The `fedipress` command: parse flags, call one use case, print a summary."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from fedipress import __version__
from fedipress.cli.doctor import doctor
from fedipress.cli.inbox import blocks, followers, inbox, interactions
from fedipress.cli.move import move
from fedipress.cli.publish import deliver, deliveries, publish, queue
from fedipress.cli.serve import serve
from fedipress.cli.support import (
    Progress,
    Verbosity,
    _print_warnings,
    _relative,
    _require_site,
    build_options,
    handle_errors,
    site_argument,
    verbosity_options,
)
from fedipress.errors import BuildFailed, FedipressError, counted

if TYPE_CHECKING:
    from fedipress.documents.urls import Urls


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fedipress")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@click.option("-v", "--verbose", is_flag=True, help="Print more detail, such as error causes.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def main(ctx: click.Context, quiet: bool, verbose: bool, debug: bool) -> None:
    """fedipress: a static blog that is also a Fediverse account."""
    ctx.obj = Verbosity(quiet, verbose or debug, debug)


@main.command()
@verbosity_options
@site_argument
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default: SITE/_site).",
)
@click.option("--no-cache", is_flag=True, help="Ignore and do not update the build cache.")
@build_options
@click.pass_obj
@handle_errors
def build(
    verbosity: Verbosity,
    site: Path,
    output: Path | None,
    no_cache: bool,
    drafts: bool,
    future: bool,
    strict: bool,
    base_url: str | None,
    jobs: int,
) -> None:
    """Build the site into SITE/_site (or --output)."""
    from fedipress import app

    _require_site(site)
    progress = Progress(not verbosity.quiet)
    options = app.BuildOptions(
        output=output,
        drafts=drafts,
        future=future,
        strict=strict,
        base_url=base_url,
        jobs=jobs,
        use_cache=not no_cache,
        # Only a build of what readers see records its ids (published-ids.json).
        record_ids=not (drafts or future or base_url),
    )
    try:
        result = app.build(site, options, progress=progress)
    finally:
        progress.clear()
    _print_warnings(result.warnings, verbosity)
    if not verbosity.quiet:
        changed = "no changes" if result.unchanged else f"{result.rendered} written"
        click.echo(
            f"built {counted(result.posts, 'post')}, {counted(result.pages, 'page')}, "
            f"{counted(result.outputs, 'file')} ({changed}) in {result.seconds:.2f}s -> "
            f"{_relative(str(result.output_dir))}"
        )


@main.command()
@verbosity_options
@site_argument
@build_options
@click.pass_obj
@handle_errors
def check(
    verbosity: Verbosity,
    site: Path,
    drafts: bool,
    future: bool,
    strict: bool,
    base_url: str | None,
    jobs: int,
) -> None:
    """Validate config, content and theme without writing anything."""
    from fedipress import app

    _require_site(site)
    options = app.BuildOptions(
        drafts=drafts, future=future, strict=strict, base_url=base_url, jobs=jobs
    )
    result = app.check(site, options)
    _print_warnings(result.warnings, verbosity)
    if not verbosity.quiet:
        click.echo(
            f"ok: {counted(result.posts, 'post')}, {counted(result.pages, 'page')}, "
            f"{counted(result.outputs, 'file')}, {counted(len(result.warnings), 'warning')}"
        )


class _NewGroup(click.Group):
    """`fedipress new PATH` makes a site, as it always did; `fedipress new post TITLE` and
    `fedipress new page TITLE` add to one. Anything that is not a subcommand is a site path."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["site", *args]
        return super().parse_args(ctx, args)


@main.group(cls=_NewGroup)
def new() -> None:
    """Create a site (fedipress new PATH), or a post or page in one (fedipress new post TITLE)."""


@new.command("site")
@verbosity_options
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Write into a folder that is not empty.")
@click.option("--title", default="My Blog", show_default=True, help="The site title.")
@click.option(
    "--base-url",
    default="https://blog.example/",
    show_default=True,
    help="Where the site will live.",
)
@click.pass_obj
@handle_errors
def new_site(
    verbosity: Verbosity | None, path: Path, force: bool, title: str, base_url: str
) -> None:
    """Create a new site in PATH (also: fedipress new PATH)."""
    from fedipress.app.scaffold import create_site

    written = create_site(path, title=title, base_url=base_url, force=force)
    if not (verbosity or Verbosity()).quiet:
        click.echo(f"created {len(written)} files in {path}")
        click.echo(f"next: fedipress serve {path}")


def _new_document(kind: str, title: str, site: Path, bundle: bool, quiet: bool) -> None:
    from datetime import UTC, datetime

    from fedipress.app.scaffold import create_document

    _require_site(site)
    written = create_document(site, kind, title, datetime.now(UTC), bundle)  # type: ignore[arg-type]
    if not quiet:
        click.echo(f"created {_relative(str(written))}")


_site_option = click.option(
    "--site",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="The site to add it to.",
)
_bundle_option = click.option(
    "--bundle", is_flag=True, help="Make a page bundle: a folder with index.md, for images."
)


@new.command("post")
@verbosity_options
@click.argument("title")
@_site_option
@_bundle_option
@click.pass_obj
@handle_errors
def new_post(verbosity: Verbosity | None, title: str, site: Path, bundle: bool) -> None:
    """Create content/posts/<slug>.md: TITLE, the date now in the site's time zone, and
    draft: true."""
    _new_document("post", title, site, bundle, (verbosity or Verbosity()).quiet)


@new.command("page")
@verbosity_options
@click.argument("title")
@_site_option
@_bundle_option
@click.pass_obj
@handle_errors
def new_page(verbosity: Verbosity | None, title: str, site: Path, bundle: bool) -> None:
    """Create content/pages/<slug>.md with TITLE and draft: true."""
    _new_document("page", title, site, bundle, (verbosity or Verbosity()).quiet)


@main.group()
def keys() -> None:
    """Create and show the site's signing keys."""


account_option = click.option(
    "--account",
    metavar="NAME",
    default="",
    help="A topic account of fediverse.accounts (default: the main account).",
)


@keys.command("generate")
@verbosity_options
@site_argument
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing key pair (followers' servers then see a new identity).",
)
@click.option(
    "--print-private",
    is_flag=True,
    help="Also print the private key once, for a host's secret store.",
)
@account_option
@click.pass_obj
@handle_errors
def keys_generate(
    verbosity: Verbosity, site: Path, force: bool, print_private: bool, account: str
) -> None:
    """Create an RSA key pair: the public key beside fedipress.yaml (commit it), the private
    key in .fedipress/private.pem (never commit it). Without --account, also one for each
    topic account that has none yet."""
    from fedipress.app.keyfiles import (
        generate_keys,
        generate_missing_keys,
        key_paths,
        private_key_env,
        private_key_note,
    )
    from fedipress.config import load_config

    _require_site(site)
    config = load_config(site)
    made: list[tuple[str, Path, Path, str]] = []
    if account:
        paths, private = generate_keys(site, config, force=force, account=account)
        made.append((account, paths.public, paths.private, private))
    else:
        main_paths = key_paths(site, config, account="")
        has_main = main_paths.public.exists() or main_paths.private.exists()
        if not has_main or force:
            paths, private = generate_keys(site, config, force=force)
            made.append(("", paths.public, paths.private, private))
        for paths in generate_missing_keys(site, config):
            name = paths.private.name.removeprefix("private-").removesuffix(".pem")
            made.append((name, paths.public, paths.private, paths.private.read_text("ascii")))
        if not made:
            generate_keys(site, config)  # raises: the key exists, with the hint
    for name, public, private_path, private in made:
        if not verbosity.quiet:
            label = f" of account '{name}'" if name else ""
            note = private_key_note(site, private_path)  # what git says, never assumed
            click.echo(f"public key{label}:  {_relative(str(public))} (commit it)", err=True)
            click.echo(
                f"private key{label}: {_relative(str(private_path))} (mode 0600, {note})",
                err=True,
            )
        if print_private:
            click.echo(
                f"# Store this as the secret {private_key_env(name)}; it is not shown again.",
                err=True,
            )
            click.echo(private, nl=False)


@keys.command("show")
@verbosity_options
@site_argument
@account_option
@click.pass_obj
@handle_errors
def keys_show(verbosity: Verbosity, site: Path, account: str) -> None:
    """Print the public key and its key id."""
    from fedipress.app.keyfiles import key_paths, read_public_pem
    from fedipress.config import load_config
    from fedipress.documents.urls import Urls

    _require_site(site)
    config = load_config(site)
    if config.fediverse is None:
        # The key id is the actor's URL plus #main-key, and only a `fediverse:` section makes
        # the site an actor; the key itself may already be there.
        public = key_paths(site, config).public
        if not public.is_file():
            raise FedipressError(
                "the site has no 'fediverse' section, so it has no account and no key",
                hint="add 'fediverse: {username: blog}' to fedipress.yaml, then run "
                f"fedipress keys generate {site}",
            )
        click.echo(
            "key id: none, as the site has no 'fediverse' section (the key id is the "
            "account's URL plus #main-key)",
            err=True,
        )
        click.echo(public.read_text(encoding="ascii"), nl=False)
        return
    click.echo(f"key id: {_account_urls(Urls(config), account).key_id()}")
    click.echo(read_public_pem(site, config, account=account), nl=False)


@keys.command("rotate")
@verbosity_options
@site_argument
@account_option
@click.pass_obj
@handle_errors
def keys_rotate(verbosity: Verbosity, site: Path, account: str) -> None:
    """Replace an account's key pair, announced: the next publish sends an Update of the
    actor with the new key, signed with the old one, which is deleted once delivered."""
    from fedipress.app.keyfiles import private_key_env, rotate_key
    from fedipress.config import load_config
    from fedipress.documents.urls import Urls

    _require_site(site)
    config = load_config(site)
    if config.fediverse is None:
        raise FedipressError("the site has no 'fediverse' section, so it has no key")
    urls = _account_urls(Urls(config), account)
    rotation = rotate_key(site, config, account)
    if not verbosity.quiet:
        click.echo(
            f"new key for {urls.handle()}: {rotation.new_fingerprint[:16]} "
            f"(was {rotation.old_fingerprint[:16]})"
        )
        click.echo(
            f"the old private key waits in {_relative(str(rotation.retiring))} until the "
            "Update announcing the new key is delivered",
            err=True,
        )
        click.echo(
            "next: commit the new public key, build and deploy, then run 'fedipress publish'; "
            f"a host reading {private_key_env(account)} needs the new private key "
            f"({_relative(str(rotation.paths.private))}) after that publish",
            err=True,
        )


def _account_urls(urls: Urls, account: str) -> Urls:
    try:
        return urls.for_account(account)
    except KeyError:
        raise FedipressError(
            f"the site has no account '{account}'",
            hint="topic accounts are listed under 'fediverse.accounts' in fedipress.yaml",
        ) from None


# --- commands from other modules ----------------------------------------------------------
main.add_command(serve)
main.add_command(inbox)
main.add_command(followers)
main.add_command(interactions)
main.add_command(blocks)
main.add_command(publish)
main.add_command(deliver)
main.add_command(queue)
main.add_command(deliveries)
main.add_command(move)
main.add_command(doctor)


__all__ = ["BuildFailed", "main"]
