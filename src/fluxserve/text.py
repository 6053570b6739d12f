"""Text that every part of fluxserve can store, encode and send.

A Python ``str`` can hold a lone UTF-16 surrogate (JSON's ``"\\udc00"`` escape makes one, and
JavaScript clients that cut an emoji in half send exactly that) and NUL, but UTF-8 cannot encode a
surrogate and PostgreSQL text cannot hold NUL. Such text does no harm where it comes in; it breaks
the database driver, JSON answers and callbacks later, far away. So every entry point (request
bodies, paths, headers, socket messages) checks values with :func:`find_bad_value` and refuses them,
and the store passes what it reads through :func:`scrub`, so rows written before the check cannot
break a read either.

Pure Python, no imports from the rest of fluxserve.
"""

from __future__ import annotations

import re
from typing import Any

MAX_NESTING = 32
"""How deep lists and objects may nest in a request (no tool input nests deeper than 2)."""

_BAD_CHAR = re.compile("[\ud800-\udfff\x00]")
_REPLACEMENT = "\ufffd"


def bad_text_reason(text: str) -> str | None:
    """Why ``text`` cannot be accepted (a lone surrogate or NUL, and where), or None when it is fine."""
    match = _BAD_CHAR.search(text)
    if match is None:
        return None
    char = match.group()
    if char == "\x00":
        return f"contains a NUL character (\\u0000) at position {match.start()}; send text without it"
    return (
        f"contains a lone UTF-16 surrogate (\\u{ord(char):04x}) at position {match.start()}, which is not "
        "valid Unicode (a character cut in half?); send valid UTF-8 text"
    )


def shown(text: str, limit: int = 80) -> str:
    """``text`` safe to put in a message: bad characters escaped, at most ``limit`` characters."""
    safe = _BAD_CHAR.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


def find_bad_value(value: Any, name: str = "", max_depth: int = MAX_NESTING) -> tuple[str, str] | None:
    """The first problem in a parsed request value, as ``(field path, what is wrong)``, or None.

    Walks dicts and lists without recursion; keys are checked like values. ``name`` is the path of
    ``value`` itself (``""`` for the whole body, whose problems are then named after their key).
    """
    pending: list[tuple[Any, str, int]] = [(value, name, 0)]
    while pending:
        item, path, depth = pending.pop()
        if isinstance(item, str):
            reason = bad_text_reason(item)
            if reason:
                return path or "body", reason
        elif isinstance(item, (dict, list)):
            if depth >= max_depth:
                return path or "body", f"is nested more than {max_depth} levels deep"
            entries = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in entries:
                if isinstance(key, str):
                    reason = bad_text_reason(key)
                    if reason:
                        return _join(path, shown(key)), f"the name {reason}"
                pending.append((child, _join(path, key), depth + 1))
    return None


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def scrub(value: Any) -> Any:
    """``value`` with every lone surrogate and NUL in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _BAD_CHAR.sub(_REPLACEMENT, value) if _BAD_CHAR.search(value) else value
    if isinstance(value, dict):
        return {scrub(key): scrub(item) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub(item) for item in value]
    return value
