"""``start``/``limit`` paging of Task/List and Tool/List, coerced and checked like any tool input."""

from __future__ import annotations

from fluxserve.catalog.coerce import InvalidValue, coerce_value
from fluxserve.catalog.model import InputRules, InputSpec
from fluxserve.errors import FieldError, ValidationError


def _paging_input(name: str, default: int, low: int, high: int) -> InputSpec:
    return InputSpec(name, name, "", "number", default, rules=InputRules(kind="integer", min=low, max=high))


START = _paging_input("start", 0, 0, 10**9)
LIMIT = _paging_input("limit", 20, 1, 1000)


def paging_value(fields: dict, spec: InputSpec) -> int:
    try:
        return coerce_value(spec, fields.get(spec.name))
    except InvalidValue as exc:
        raise ValidationError([FieldError(spec.name, str(exc))]) from None
