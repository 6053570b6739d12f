"""Whether a database's schema is already at the newest migration, answered without Alembic.

Every process that opens the store (the API, each worker, each ``fluxserve project`` command) asks
this first. Importing Alembic and letting it find there is nothing to do costs about a fifth of a
second of CPU per process; one SELECT and a look at the migration files' ``revision`` lines cost a
few milliseconds. Alembic still runs whenever there is something to do (or the answer is unsure).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

import sqlalchemy as sa

_REVISION = re.compile(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)


@cache
def packaged_head() -> str | None:
    """The one revision of the packaged migrations that no other revises; None if that is not one."""
    revisions, revised = set(), set()
    for script in (resources.files("fluxserve.tasks") / "migrations" / "versions").iterdir():
        if script.name.endswith(".py") and not script.name.startswith("_"):
            text = script.read_text(encoding="utf-8")
            revisions.update(_REVISION.findall(text))
            revised.update(_DOWN_REVISION.findall(text))
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


def is_current(connection: sa.Connection) -> bool:
    """True when the database records exactly the packaged head (a fresh database: False)."""
    head = packaged_head()
    if head is None or not sa.inspect(connection).has_table("alembic_version"):
        return False
    stamped = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    return stamped == [head]
