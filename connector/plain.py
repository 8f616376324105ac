"""Plain records: the core's own data as slotted dataclasses, with pydantic at their edges.

Sessions, legs, transcript lines and queue entries are read many times for every message
(some 150 attribute reads). On a pydantic model each read takes CPython's slow path (the
class defines ``__getattr__``, so no read of it is specialized: some 550 instructions
against a few dozen), and making or copying one costs microseconds. These records are
made only by the core, from values it made or validated itself, so they need no
validation when they are made; what they are read from (the store's JSON, an imported
file) is validated, by a pydantic ``TypeAdapter`` of the dataclass, as a model would be.

:class:`Record` gives each one the few pydantic-style methods the core and its tests use,
with the same meaning: ``model_validate`` / ``model_validate_json`` (validated, extra
keys ignored), ``model_dump`` / ``model_dump_json`` (every field, in order: the JSON is
the same byte for byte as the model's was) and ``model_copy``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any, Literal, Self

from pydantic import TypeAdapter

_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def adapter(cls: type[Any]) -> TypeAdapter[Any]:
    """The ``TypeAdapter`` of a record class, made once (after its module is loaded, so
    that its annotations resolve)."""
    found = _ADAPTERS.get(cls)
    if found is None:
        found = _ADAPTERS[cls] = TypeAdapter(cls)
    return found


class Record:
    """Base of the plain records; subclasses are ``@dataclass(slots=True, kw_only=True)``."""

    __slots__ = ()

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """A record from Python data (a dict, or a record), validated."""
        validated: Self = adapter(cls).validate_python(data)
        return validated

    @classmethod
    def model_validate_json(cls, data: str | bytes) -> Self:
        """A record from its JSON, validated."""
        validated: Self = adapter(cls).validate_json(data)
        return validated

    def model_dump(
        self,
        *,
        mode: Literal["json", "python"] = "python",
        include: Any = None,
        exclude: Any = None,
    ) -> dict[str, Any]:
        """Its fields as a dict (``mode="json"``: JSON-ready values)."""
        dumped: dict[str, Any] = adapter(type(self)).dump_python(
            self, mode=mode, include=include, exclude=exclude
        )
        return dumped

    def model_dump_json(self) -> str:
        """Its JSON: every field, in order."""
        return adapter(type(self)).dump_json(self).decode()

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy (``deep``: of everything it holds), with ``update``'s fields replaced
        (not validated)."""
        copied = copy.deepcopy(self) if deep else shallow(self)
        for name, value in (update or {}).items():
            setattr(copied, name, value)
        return copied


def shallow(record: Any) -> Any:
    """A new record of the same class holding the same field values (not copies of them)."""
    cls = type(record)
    copier = _COPIERS.get(cls)
    if copier is None:
        copier = _COPIERS[cls] = _copier(cls)
    return copier(record)


_COPIERS: dict[type[Any], Callable[[Any], Any]] = {}


def _copier(cls: type[Any]) -> Callable[[Any], Any]:
    """A function copying ``cls``'s fields one by one, written out as ``dataclasses`` writes
    ``__init__`` (five times faster than a loop over the fields: a session is copied on
    every save)."""
    lines = ["def copy(record):", "    out = new(cls)"]
    lines += [f"    out.{f.name} = record.{f.name}" for f in dataclasses.fields(cls)]
    lines.append("    return out")
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    exec("\n".join(lines), namespace)  # what runs: the fields' names, identifiers
    copier: Callable[[Any], Any] = namespace["copy"]
    return copier
