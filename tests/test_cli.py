from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from fedipress.cli.main import main

CONFIG = "-- fedipress.yaml --\ntitle: T\nbase_url: https://blog.example/\n"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_new__scaffolds_a_site_that_builds(tmp_path: Path) -> None:
    site = tmp_path / "blog"
    code, out, _ = run("new", str(site), "--title", 'My "Blog"')
    assert code == 0 and "created" in out
    for rel in [
        "fedipress.yaml",
        ".gitignore",
        "content/posts/hello-world.md",
        "content/pages/about.md",
    ]:
        assert (site / rel).is_file(), rel
    assert "/.fedipress/" in (site / ".gitignore").read_text()
    code, out, err = run("build", str(site))
    assert code == 0, err
    assert "built 1 post, 1 page, " in out
    assert 'My "Blog"' in (site / "_site/index.html").read_text().replace("&#34;", '"')


def test_new__refuses_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x/file").write_text("keep")
    code, _, err = run("new", str(tmp_path / "x"))
    assert code == 1
    assert "--force" in err
    assert (tmp_path / "x/file").read_text() == "keep"
    code, _, _ = run("new", str(tmp_path / "x"), "--force")
    assert code == 0


def test_build__content_error_exit_1_without_traceback(make_site) -> None:
    site = make_site(CONFIG + "-- content/posts/a.md --\n---\ntitle: A\ndate: 2024-02-30\n---\nx\n")
    code, _, err = run("build", str(site))
    assert code == 1
    assert "content/posts/a.md:3:7: front matter key 'date' is not a date (got '2024-02-30')" in err
    assert "hint: use YYYY-MM-DD" in err
    assert "Traceback" not in err


def test_build__unknown_config_key_suggests(make_site) -> None:
    site = make_site(CONFIG + "post_per_page: 3\n")
    code, _, err = run("build", str(site))
    assert code == 1
    assert "fedipress.yaml:3:1: unknown key 'post_per_page'" in err
    assert "did you mean 'posts_per_page'?" in err


def test_build__debug_shows_traceback(make_site) -> None:
    site = make_site(CONFIG + "bogus: 1\n")
    code, _, err = run("--debug", "build", str(site))
    assert code == 1 and "Traceback" in err


def test_build__usage_error_exit_2(tmp_path: Path) -> None:
    code, _, _ = run("build", "--no-such-flag")
    assert code == 2
    code, _, err = run("build", str(tmp_path / "missing"))
    assert code == 2 and "is not a folder" in err


def test_build__quiet_and_summary_line(make_site) -> None:
    site = make_site(CONFIG + "-- content/posts/a.md --\n---\ntitle: A\ndate: 2024-02-03\n---\nx\n")
    code, out, _ = run("build", str(site), "-q")
    assert code == 0 and out == ""
    code, out, _ = run("build", str(site))
    assert out.count("\n") == 1 and "(no changes)" in out


def test_build__missing_template_is_reported(make_site) -> None:
    site = make_site(CONFIG + "-- templates/post.html --\n{% extends 'nothing.html' %}\n")
    code, _, err = run("build", str(site))
    assert code == 1
    assert "template 'nothing.html' not found" in err


def test_build__jinja_syntax_error_names_template_and_line(make_site) -> None:
    site = make_site(CONFIG + "-- templates/tags.html --\nline one\n{% if %}\n")
    code, _, err = run("build", str(site))
    assert code == 1
    assert "tags.html:2: template syntax error" in err


def test_build__strict_makes_warnings_fatal(make_site) -> None:
    site = make_site(
        CONFIG + "-- content/posts/a.md --\n---\ntitle: A\ndate: 2024-02-03\n---\n[x](nowhere.md)\n"
    )
    code, _, err = run("build", str(site))
    assert code == 0 and "warning: broken link to missing post 'nowhere.md'" in err
    code, _, err = run("build", str(site), "--strict")
    assert code == 1 and "1 warning" in err


def test_check__ok_and_writes_nothing(make_site) -> None:
    site = make_site(CONFIG + "-- content/posts/a.md --\n---\ntitle: A\ndate: 2024-02-03\n---\nx\n")
    code, out, _ = run("check", str(site))
    assert code == 0 and out.startswith("ok: 1 post, 0 pages, ")
    assert sorted(p.name for p in site.iterdir()) == ["content", "fedipress.yaml"]


def test_check__reports_errors(make_site) -> None:
    site = make_site(CONFIG + "-- content/posts/a.md --\n---\ntitle: A\n---\nx\n")
    code, _, err = run("check", str(site))
    assert code == 1 and "missing required front matter key 'date'" in err


def test_new_post__front_matter_filled_in_like_hugo_new(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    site = tmp_path / "blog"
    assert run("new", str(site))[0] == 0  # `new PATH` still makes a site
    (site / "fedipress.yaml").write_text(
        (site / "fedipress.yaml").read_text().replace("timezone: UTC", "timezone: Europe/Berlin")
    )
    before = datetime.now(UTC).replace(microsecond=0)
    code, out, err = run("new", "post", "Bread, again: a 2nd try!", "--site", str(site))
    assert code == 0, err
    path = site / "content/posts/bread-again-a-2nd-try.md"
    assert out.strip().endswith("content/posts/bread-again-a-2nd-try.md")
    text = path.read_text()
    assert text.startswith('---\ntitle: "Bread, again: a 2nd try!"\ndate: ')
    assert "\ndraft: true\n" in text
    written = datetime.fromisoformat(text.split("date: ", 1)[1].split("\n", 1)[0])
    # the date is now, written in the site's time zone
    assert written.utcoffset() == ZoneInfo("Europe/Berlin").utcoffset(written.replace(tzinfo=None))
    assert before <= written <= datetime.now(UTC) + timedelta(seconds=1)
    # a draft: left out of a build until --drafts, and it builds without a warning
    assert run("build", str(site))[1].startswith("built 1 post,")
    code, out, err = run("build", str(site), "--drafts", "--strict")
    assert code == 0 and out.startswith("built 2 posts,"), err
    # never replaces a file
    code, _, err = run("new", "post", "Bread, again: a 2nd try!", "--site", str(site))
    assert code == 1 and "already exists" in err


def test_new_page__and_bundles(tmp_path: Path) -> None:
    site = tmp_path / "blog"
    run("new", "site", str(site))
    code, _, err = run("new", "page", "Now", "--site", str(site), "--bundle")
    assert code == 0, err
    text = (site / "content/pages/now/index.md").read_text()
    assert text.startswith('---\ntitle: "Now"\ndraft: true\n---\n') and "date:" not in text
    code, _, err = run("new", "post", "!!!", "--site", str(site))
    assert code == 1 and "cannot make a file name" in err
    code, _, err = run("new", "post", "Elsewhere", "--site", str(tmp_path / "nowhere"))
    assert code == 2 and "is not a folder" in err


def test_build__one_duplicate_slug_is_one_error(make_site) -> None:
    post = "---\ntitle: {}\ndate: 2024-02-0{}\nslug: same\n---\nx\n"
    site = make_site(
        CONFIG
        + "-- content/posts/a.md --\n"
        + post.format("A", 1)
        + "-- content/posts/b.md --\n"
        + post.format("B", 2)
    )
    code, _, err = run("build", str(site))
    assert code == 1
    assert err.count("claim the same URL") == 1 and "share the id" not in err
    assert "build failed: 1 error" in err


def test_build__counts_read_as_english(make_site) -> None:
    site = make_site(CONFIG + "-- content/posts/a.md --\n---\ntitle: A\ndate: 2024-02-03\n---\nx\n")
    code, out, _ = run("build", str(site))
    assert code == 0 and out.startswith("built 1 post, 0 pages, ")
    code, out, _ = run("check", str(site))
    assert out.startswith("ok: 1 post, 0 pages, ") and out.rstrip().endswith("0 warnings")
