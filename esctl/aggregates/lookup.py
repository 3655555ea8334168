"""Finding the aggregate of a stream in the user's model."""

from __future__ import annotations

from types import ModuleType

from esctl.aggregates.definition import Aggregate, class_defined_at, spec_of
from esctl.errors import ModelError
from esctl.events import category_of


def aggregates_in(module: ModuleType | None) -> list[type[Aggregate]]:
    """The aggregates a model defines (subclasses of Aggregate with a category)."""
    if module is None:
        return []
    from esctl.model import definitions

    return definitions(
        module,
        lambda v: isinstance(v, type) and issubclass(v, Aggregate) and bool(getattr(v, "category", "")),
    )


def aggregate_for(module: ModuleType | None, stream: str) -> type[Aggregate] | None:
    """The model's aggregate for the stream's category, or None."""
    category = category_of(stream)
    found = [a for a in aggregates_in(module) if spec_of(a).category == category]
    if len(found) > 1:
        names = "; ".join(f"{class_defined_at(a)}{spec_of(a).name}" for a in found)
        raise ModelError(f"more than one aggregate for category {category!r}: {names}")
    return found[0] if found else None
