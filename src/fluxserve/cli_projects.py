"""``fluxserve project create | list | show | update | rotate | delete``: projects and their keys.

These talk to the database of the settings (FLUXSERVE_DATABASE_URL / FLUXSERVE_DATA_DIR) directly, so
they work whether or not a server is running; a server sees every change with its next request.
An API secret is printed once, when it is made (create, rotate); ``show`` never prints it.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from fluxserve.errors import ClientError

app = typer.Typer(help="Projects: API keys, limits and webhook signing secrets.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _settings():
    from fluxserve.cli import load_settings

    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


def _projects():
    from fluxserve.tasks.store import TaskStore

    return TaskStore.open(_settings().resolved_database_url).projects


def _changed() -> None:
    """Tell API processes on this machine to drop cached keys now (SQLite; on PostgreSQL the store's
    own NOTIFY reaches every machine)."""
    from fluxserve.tasks.projects import mark_changed

    mark_changed(_settings().data_dir)


def _ips(value: str | None) -> list[str] | None:
    return None if value is None else [part for part in value.split(",") if part.strip()]


def _describe(project, *, with_secret: bool) -> dict:
    info = {
        "name": project.name,
        "api_key": project.api_key,
        "require_signature": project.require_signature,
        "max_concurrent": project.max_concurrent,
        "allowed_ips": list(project.allowed_ips),
        "webhook_secret": project.webhook_secret,
        "bootstrap": project.bootstrap,
    }
    if with_secret:
        info["api_secret"] = project.api_secret
    return info


def _emit(info: dict, as_json: bool, note: str = "") -> None:
    if as_json:
        typer.echo(json.dumps(info))
        return
    for key, value in info.items():
        shown = ",".join(value) if isinstance(value, list) else value
        typer.echo(f"{key + ':':<19}{shown if shown not in ('', []) else '-'}")
    if note:
        typer.echo(note, err=True)


def _fail(exc: ClientError) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Project name: letters, digits, . _ -")],
    key_only: Annotated[
        bool, typer.Option("--key-only", help="No secret: x-api-key alone authenticates.")
    ] = False,
    max_concurrent: Annotated[
        int, typer.Option("--max-concurrent", help="Unfinished tasks allowed at once (0 = no limit).")
    ] = 0,
    allow_ip: Annotated[
        str,
        typer.Option("--allow-ip", help="Comma-separated addresses/CIDRs allowed to call (default: any)."),
    ] = "",
    as_json: JsonOption = False,
) -> None:
    """Create a project; its API key and secret are printed once."""
    try:
        project = _projects().create(
            name,
            require_signature=not key_only,
            max_concurrent=max_concurrent,
            allowed_ips=_ips(allow_ip) or (),
        )
    except ClientError as exc:
        raise _fail(exc) from None
    _changed()
    _emit(_describe(project, with_secret=True), as_json, "Store the API secret now: it is not shown again.")


@app.command("list")
def list_projects(as_json: JsonOption = False) -> None:
    """Every project with its limits and unfinished tasks (no secrets)."""
    store = _projects()
    active = store.active_counts()
    rows = [
        {
            "name": p.name,
            "api_key": p.api_key[:6] + "…",
            "auth": "signature" if p.require_signature else "key-only",
            "max_concurrent": p.max_concurrent,
            "allowed_ips": ",".join(p.allowed_ips) or "*",
            "active_tasks": active.get(p.id, 0),
            "bootstrap": p.bootstrap,
        }
        for p in store.list()
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    typer.echo(f"{'name':<24}{'key':<10}{'auth':<11}{'max':>5}{'active':>8}  allowed ips")
    for row in rows:
        name = row["name"] + (" (settings)" if row["bootstrap"] else "")
        typer.echo(
            f"{name:<24}{row['api_key']:<10}{row['auth']:<11}{row['max_concurrent'] or '-':>5}"
            f"{row['active_tasks']:>8}  {row['allowed_ips']}"
        )


@app.command("show")
def show(name: str, as_json: JsonOption = False) -> None:
    """A project's key, limits and webhook signing secret (never its API secret)."""
    try:
        project = _projects().by_name(name)
    except ClientError as exc:
        raise _fail(exc) from None
    _emit(_describe(project, with_secret=False), as_json)


@app.command("update")
def update(
    name: str,
    max_concurrent: Annotated[int | None, typer.Option("--max-concurrent")] = None,
    allow_ip: Annotated[
        str | None, typer.Option("--allow-ip", help="Replaces the list; '' or '*' = any.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Change a project's limits."""
    try:
        project = _projects().update(name, max_concurrent=max_concurrent, allowed_ips=_ips(allow_ip))
    except ClientError as exc:
        raise _fail(exc) from None
    _changed()
    _emit(_describe(project, with_secret=False), as_json)


@app.command("rotate")
def rotate(
    name: str,
    webhook_secret: Annotated[
        bool, typer.Option("--webhook-secret", help="Also replace the webhook signing secret.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """New API key and secret; the old ones stop working at once."""
    try:
        project = _projects().rotate(name, webhook_secret=webhook_secret)
    except ClientError as exc:
        raise _fail(exc) from None
    _changed()
    _emit(
        _describe(project, with_secret=True),
        as_json,
        "The old key no longer works. Store the new secret now.",
    )


@app.command("delete")
def delete(name: str) -> None:
    """Revoke a project's keys at once and cancel its queued tasks (its task history is kept)."""
    try:
        cancelled = _projects().delete(name)
    except ClientError as exc:
        raise _fail(exc) from None
    _changed()
    typer.echo(f"project {name} deleted; {cancelled} queued task(s) cancelled")
