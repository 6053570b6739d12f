"""Tool/List and Tool/Detail in Wiro's shape (models.md); the shaping lives in ``fluxserve.tool_wire``.

Tool/List honours models.md's request fields: ``search`` (words matched in title, slugs,
description, categories and tags), ``categories`` and ``tags`` (a tool matches when it has any of
them), ``slugowner``, ``sort`` (``id`` or ``relevance``) with ``order`` (``ASC``/``DESC``),
``start``/``limit`` paging and ``summary`` (List's short items, without ``parameters``).
``hideworkflows`` is accepted; fluxserve has no workflows.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from fluxserve.api.deps import authenticated, body, services, text_field
from fluxserve.api.paging import LIMIT, START, paging_value
from fluxserve.api.responses import JSONResponse
from fluxserve.catalog.coerce import InvalidValue, split_multi_value
from fluxserve.catalog.model import ToolSpec
from fluxserve.errors import FieldError, ValidationError
from fluxserve.tool_wire import ToolStats, tool_to_wire
from fluxserve.wire import ok_body

router = APIRouter()

_SORTS = ("id", "relevance")


@router.post("/v1/Tool/List")
async def tool_list(request: Request) -> JSONResponse:
    await authenticated(request)
    fields = (await body(request)).fields
    start, limit = paging_value(fields, START), paging_value(fields, LIMIT)
    query = _ListQuery.from_fields(fields)
    svc = services(request)
    tools = query.apply(list(svc.catalog))
    stats = await run_in_threadpool(svc.store.tool_stats)
    items = [
        tool_to_wire(
            tool, svc.availability(tool.engine), _stats(stats, tool), detail=False, summary=query.summary
        )
        for tool in tools[start : start + limit]
    ]
    return JSONResponse(ok_body(total=len(tools), tool=items))


@router.post("/v1/Tool/Detail")
async def tool_detail(request: Request) -> JSONResponse:
    await authenticated(request)
    fields = (await body(request)).fields
    svc = services(request)
    owner = text_field(fields, "slugowner", "cleanslugowner")
    project = text_field(fields, "slugproject", "cleanslugproject")
    slug = text_field(fields, "slug", "tool") or f"{owner}/{project}"
    tool = svc.catalog.get(slug)
    stats = await run_in_threadpool(svc.store.tool_stats)
    item = tool_to_wire(tool, svc.availability(tool.engine), _stats(stats, tool), detail=True)
    return JSONResponse(ok_body(tool=[item]))


def _stats(stats: dict[str, tuple[int, int, int, float]], tool: ToolSpec) -> ToolStats:
    runs, succeeded, failed, last = stats.get(tool.tool, (0, 0, 0, 0.0))
    return ToolStats(runs, succeeded, failed, int(last))


class _ListQuery:
    """Tool/List's filters and order, read from the request fields."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.search = [word for word in text_field(fields, "search").lower().split() if word]
        self.categories = _words(fields, "categories")
        self.tags = _words(fields, "tags")
        self.owner = text_field(fields, "slugowner").lower()
        self.sort = (text_field(fields, "sort") or ("relevance" if self.search else "id")).lower()
        self.descending = text_field(fields, "order").upper() == "DESC"
        self.summary = text_field(fields, "summary").lower() in ("true", "1", "yes")
        problems = []
        if self.sort not in _SORTS:
            problems.append(FieldError("sort", f"must be one of {', '.join(_SORTS)}"))
        if text_field(fields, "order").upper() not in ("", "ASC", "DESC"):
            problems.append(FieldError("order", "must be ASC or DESC"))
        if problems:
            raise ValidationError(problems)

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> _ListQuery:
        return cls(fields)

    def apply(self, tools: list[ToolSpec]) -> list[ToolSpec]:
        """The matching tools: by id (``order`` DESC reverses), or most relevant first."""
        chosen = [tool for tool in tools if self._matches(tool)]
        if self.sort == "relevance" and self.search:
            return sorted(chosen, key=lambda tool: (-self._score(tool), tool.id))
        return sorted(chosen, key=lambda tool: tool.id, reverse=self.descending)

    def _matches(self, tool: ToolSpec) -> bool:
        if self.owner and tool.slugowner.lower() != self.owner:
            return False
        if self.categories and not {c.lower() for c in tool.categories} & self.categories:
            return False
        if self.tags and not {t.lower() for t in tool.tags} & self.tags:
            return False
        return all(word in _haystack(tool) for word in self.search)

    def _score(self, tool: ToolSpec) -> int:
        name = tool.tool.lower()
        return sum(3 if word in name else 1 for word in self.search)


def _haystack(tool: ToolSpec) -> str:
    return " ".join([tool.tool, tool.description, *tool.categories, *tool.tags]).lower()


def _words(fields: dict[str, Any], name: str) -> set[str]:
    """A list field: a JSON list, a list, or a comma-separated string (forms and curl)."""
    try:
        return {item.lower() for item in split_multi_value(fields.get(name))}
    except InvalidValue as exc:
        raise ValidationError([FieldError(name, str(exc))]) from None
