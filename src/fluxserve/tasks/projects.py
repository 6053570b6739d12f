"""Projects: who may call the API, with which credentials and limits.

A project holds an API key, an API secret (signature projects) and a webhook signing secret
(``whsec_…``, Standard Webhooks). Keys are looked up on every request, so a rotation or a deletion
takes effect at once. A deleted project keeps its row (its tasks and files still point at it) but
its key is replaced by a value no client can send and its queued tasks are cancelled.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from fluxserve.errors import ConflictError, FieldError, NotFoundError, ValidationError
from fluxserve.tasks import schema
from fluxserve.tasks.records import Project
from fluxserve.tasks.status import TaskStatus


def changes_marker(data_dir: Path) -> Path:
    """A file whose change time says "projects changed": the ``fluxserve project`` commands touch it
    and every API process on this machine drops its cached keys when it moves (a stat, no query)."""
    return data_dir / "projects.changed"


PROJECTS_CHANNEL = "fluxserve_projects"


def announce_change(conn: sa.Connection) -> None:
    """On PostgreSQL, tell every API process listening on any machine that projects changed.

    NOTIFY is transactional: it is delivered when the change commits, never for a rolled-back one.
    SQLite has no such channel; there the marker file below serves the one machine."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": PROJECTS_CHANNEL})


def mark_changed(data_dir: Path) -> None:
    marker = changes_marker(data_dir)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(time.time_ns()))


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def new_api_key() -> str:
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(32))


def new_api_secret() -> str:
    return secrets.token_hex(24)


def new_webhook_secret() -> str:
    """``whsec_`` + base64 of 24 random bytes, the Standard Webhooks secret format."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ValidationError(
            [
                FieldError(
                    "name", f"{name!r} is not allowed; use 1-64 of A-Z a-z 0-9 . _ - (starting alphanumeric)"
                )
            ]
        )
    return name


def parse_allowed_ips(values: Iterable[str]) -> tuple[str, ...]:
    """Normalise an allow-list: CIDRs or single addresses (``10.0.0.0/8``, ``203.0.113.7``) or ``*``."""
    cleaned: list[str] = []
    for raw in values:
        value = raw.strip()
        if not value:
            continue
        if value == "*":
            cleaned.append("*")
            continue
        try:
            cleaned.append(str(ipaddress.ip_network(value, strict=False)))
        except ValueError:
            raise ValidationError(
                [FieldError("allow-ip", f"{value!r} is not an IP address or CIDR (e.g. 10.0.0.0/8), nor '*'")]
            ) from None
    return tuple(dict.fromkeys(cleaned))


def ip_allowed(project: Project, address: str) -> bool:
    """Whether ``address`` may use ``project`` (an empty allow-list or ``*`` allows any)."""
    if not project.allowed_ips or "*" in project.allowed_ips:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in ipaddress.ip_network(cidr) for cidr in project.allowed_ips)


def _project(row: Any) -> Project:
    return Project(
        id=row["id"],
        name=row["name"],
        api_key=row["api_key"],
        api_secret=row["api_secret"],
        require_signature=bool(row["require_signature"]),
        max_concurrent=int(row["max_concurrent"] or 0),
        allowed_ips=tuple(part for part in (row["allowed_ips"] or "").split(",") if part),
        webhook_secret=row["webhook_secret"],
        bootstrap=bool(row["bootstrap"]),
        createtime=float(row["createtime"] or 0),
    )


class ProjectStore:
    """Every read and change of the projects table."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # --- reads ----------------------------------------------------------------------------

    def by_key(self, api_key: str) -> Project | None:
        """The live project with this API key (None for unknown or deleted)."""
        t = schema.projects
        return self._one(sa.and_(t.c.api_key == api_key, t.c.deletedtime == 0))

    def by_name(self, name: str) -> Project:
        t = schema.projects
        project = self._one(sa.and_(t.c.name == name, t.c.deletedtime == 0))
        if project is None:
            raise NotFoundError(f"There is no project named {name!r} (see `fluxserve project list`).")
        return project

    def by_id(self, project_id: int) -> Project | None:
        """Any project, deleted ones included (their ended tasks still send signed callbacks)."""
        return self._one(schema.projects.c.id == project_id)

    def list(self) -> list[Project]:
        t = schema.projects
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t).where(t.c.deletedtime == 0).order_by(t.c.id)).mappings()
            return [_project(row) for row in rows]

    def active_counts(self) -> dict[int, int]:
        """Unfinished tasks per project (what counts against ``max_concurrent``)."""
        t = schema.tasks
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.project_id, sa.func.count())
                .where(t.c.status.not_in(_TERMINAL))
                .group_by(t.c.project_id)
            )
            return {project_id: count for project_id, count in rows}

    def _one(self, condition: Any) -> Project | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(schema.projects).where(condition)).mappings().first()
        return None if row is None else _project(row)

    # --- changes --------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        require_signature: bool = True,
        max_concurrent: int = 0,
        allowed_ips: Iterable[str] = (),
    ) -> Project:
        """A new project with fresh credentials (a key-only project gets no API secret)."""
        check_name(name)
        if max_concurrent < 0:
            raise ValidationError([FieldError("max-concurrent", "must be 0 (no limit) or more")])
        values = {
            "name": name,
            "api_key": new_api_key(),
            "api_secret": new_api_secret() if require_signature else "",
            "require_signature": require_signature,
            "max_concurrent": max_concurrent,
            "allowed_ips": ",".join(parse_allowed_ips(allowed_ips)),
            "webhook_secret": new_webhook_secret(),
            "createtime": time.time(),
        }
        with self.engine.begin() as conn:
            if self._name_taken(conn, name):
                raise ConflictError(f"A project named {name!r} already exists.")
            conn.execute(sa.insert(schema.projects).values(**values))
            announce_change(conn)
        return self.by_name(name)

    def update(
        self, name: str, *, max_concurrent: int | None = None, allowed_ips: Iterable[str] | None = None
    ) -> Project:
        values: dict[str, Any] = {}
        if max_concurrent is not None:
            if max_concurrent < 0:
                raise ValidationError([FieldError("max-concurrent", "must be 0 (no limit) or more")])
            values["max_concurrent"] = max_concurrent
        if allowed_ips is not None:
            values["allowed_ips"] = ",".join(parse_allowed_ips(allowed_ips))
        project = self.by_name(name)
        if values:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.update(schema.projects).where(schema.projects.c.id == project.id).values(**values)
                )
                announce_change(conn)
        return self.by_name(name)

    def rotate(self, name: str, *, webhook_secret: bool = False) -> Project:
        """New API key (and secret); the old ones stop working with the next request."""
        project = self.by_name(name)
        if project.bootstrap:
            raise ConflictError(
                f"Project {name!r} takes its credentials from the settings (FLUXSERVE_API_KEY / "
                "FLUXSERVE_API_SECRET, or data/credentials.json when those are unset): change them there."
            )
        values: dict[str, Any] = {
            "api_key": new_api_key(),
            "api_secret": new_api_secret() if project.require_signature else "",
        }
        if webhook_secret:
            values["webhook_secret"] = new_webhook_secret()
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(schema.projects).where(schema.projects.c.id == project.id).values(**values)
            )
            announce_change(conn)
        return self.by_name(name)

    def delete(self, name: str) -> int:
        """Revoke a project's keys at once and cancel its queued tasks; returns how many were cancelled."""
        project = self.by_name(name)
        if project.bootstrap:
            raise ConflictError(f"Project {name!r} is the settings' project and cannot be deleted.")
        p, t = schema.projects, schema.tasks
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(p)
                .where(p.c.id == project.id)
                .values(deletedtime=now, api_key=f"deleted:{project.id}:{new_api_key()}", api_secret="")
            )
            announce_change(conn)
            queued = sa.and_(t.c.project_id == project.id, t.c.status == TaskStatus.QUEUE.value)
            return conn.execute(
                sa.update(t)
                .where(queued)
                .values(
                    status=TaskStatus.CANCEL.value,
                    canceltime=now,
                    debugoutput="Cancelled: its project was deleted.",
                    callback_state=sa.case((t.c.callbackurl.like("http%://%"), "pending"), else_="none"),
                    callback_next_at=now,
                )
            ).rowcount

    def ensure(self, api_key: str, api_secret: str, require_signature: bool, *, bootstrap: bool) -> Project:
        """The project with this key, created or updated to match (the settings' project when
        ``bootstrap``: it follows the settings when they change its key, keeping its tasks)."""
        p = schema.projects
        values = {"api_secret": api_secret, "require_signature": require_signature}
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(p).where(p.c.api_key == api_key)).mappings().first()
            if row is None and bootstrap:
                row = conn.execute(sa.select(p).where(p.c.bootstrap, p.c.deletedtime == 0)).mappings().first()
            if bootstrap:
                conn.execute(sa.update(p).where(p.c.bootstrap).values(bootstrap=False))
                values["bootstrap"] = True
            if row is None:
                conn.execute(
                    sa.insert(p).values(
                        name=self._free_name(conn, "default"),
                        api_key=api_key,
                        webhook_secret=new_webhook_secret(),
                        createtime=time.time(),
                        **values,
                    )
                )
            else:
                if not row["webhook_secret"]:
                    values["webhook_secret"] = new_webhook_secret()
                conn.execute(
                    sa.update(p).where(p.c.id == row["id"]).values(api_key=api_key, deletedtime=0, **values)
                )
        project = self.by_key(api_key)
        assert project is not None
        return project

    @staticmethod
    def _name_taken(conn: sa.Connection, name: str) -> bool:
        p = schema.projects
        return (
            conn.execute(sa.select(p.c.id).where(p.c.name == name, p.c.deletedtime == 0)).first() is not None
        )

    def _free_name(self, conn: sa.Connection, base: str) -> str:
        name, n = base, 1
        while self._name_taken(conn, name):
            n += 1
            name = f"{base}-{n}"
        return name


_TERMINAL = [TaskStatus.POSTPROCESS_END.value, TaskStatus.CANCEL.value]
