"""Event categories: ECS's list, and the warning for a category that can match nothing.

`proces where ...` is valid EQL that silently matches no event; like an unknown field, it is
worth a warning when the category is neither ECS's nor one the data has."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from . import ir
from .errors import nearest

#: ECS `event.category` allowed values (ECS 8.x).
ECS_CATEGORIES = frozenset({
    "api", "authentication", "configuration", "database", "driver", "email", "file", "host", "iam",
    "intrusion_detection", "library", "malware", "network", "package", "process", "registry", "session",
    "threat", "vulnerability", "web",
})


def query_categories(q: ir.Query) -> list[str]:
    """The categories a query names (`any` is none), in first-use order."""
    return list(dict.fromkeys(f.category for f in ir.query_filters(q) if f.category is not None))


def unknown_category_warnings(q: ir.Query, present: Callable[[], Iterable[object]]) -> list[str]:
    """A warning per category that is not ECS's and that no event has; `present` gives the data's
    categories and is only called when a category is not ECS's (it may cost a pass over a column)."""
    unknown = [c for c in query_categories(q) if c not in ECS_CATEGORIES]
    if not unknown:
        return []
    have = {v for v in present() if isinstance(v, str)}
    out = []
    for c in unknown:
        if c in have:
            continue
        near = nearest(c, sorted(ECS_CATEGORIES | have))
        out.append(f"event category {c!r} is not an ECS category and occurs in no event; it matches nothing"
                   + (f" (did you mean {near!r}?)" if near else ""))
    return out
