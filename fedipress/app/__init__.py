"""Use cases: the only layer that joins content and federation with files, the environment
and the clock. `build` and `check` are re-exported for `from fedipress import app`; the
federation use cases live in their own modules (importing them loads httpx)."""

from fedipress.app.build import BuildOptions, BuildResult, build, check

__all__ = ["BuildOptions", "BuildResult", "build", "check"]
