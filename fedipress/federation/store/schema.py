"""The numbered schema migrations shipped in `migrations/*.sql`, read as package resources."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from fedipress.errors import StoreError

_FILE_NAME = re.compile(r"^(\d{4})_(\w+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """The statements of the file, split on ';' once `--` comments are gone.

        Good enough for our own files, which keep ';' and '--' out of string literals.
        """
        text = "\n".join(line.split("--", 1)[0] for line in self.sql.splitlines())
        return [part.strip() for part in text.split(";") if part.strip()]


def load_migrations() -> list[Migration]:
    """Every `NNNN_name.sql` file in the migrations folder, in version order."""
    folder = resources.files(__package__) / "migrations"
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"two migrations numbered {version}: {entry.name}")
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def check_same_names(applied: dict[int, str], migrations: list[Migration]) -> None:
    """Refuse a database whose migration N is not our migration N: a development build that
    numbered its migration differently made it, and skipping ours would break every query."""
    for migration in migrations:
        name = applied.get(migration.version)
        if name is not None and name != migration.name:
            raise StoreError(
                f"the database's migration {migration.version} is '{name}', "
                f"but this fedipress's migration {migration.version} is '{migration.name}'",
                hint="The database was made by another development version of fedipress: "
                "use that version, or start from a fresh database.",
            )


def check_not_newer(applied: int, known: int) -> None:
    """Refuse a database migrated by a newer fedipress: our queries may no longer fit it."""
    if applied > known:
        raise StoreError(
            f"the database schema is at migration {applied}, "
            f"but this fedipress only knows migrations up to {known}",
            hint="Upgrade fedipress, or point FEDIPRESS_DATABASE_URL at another database.",
        )
