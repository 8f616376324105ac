"""Activities on the message path copied without ``model_copy``'s overhead (some 2-4 us
each); the core's own records are plain dataclasses (:mod:`connector.plain`), which need
no such help.

:func:`replaced` gives what ``model.model_copy(update=update)`` gives for a model without
private attributes when ``update`` names its fields only: a new instance whose field values
are the same objects (a shallow copy), with ``update`` applied unvalidated and counted as
set. ``tests/connector/test_modelcopy.py`` checks it against pydantic's own.

``MIDTIER_SELF_CHECKS=1`` (the test suite sets it) turns on checks of the core's own
promises that cost too much for every message otherwise (:data:`CHECKING`; the session
cache's, in :mod:`connector.store.sqlite_cache`).
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)
SELF_CHECKS = "MIDTIER_SELF_CHECKS"
CHECKING = os.environ.get(SELF_CHECKS) == "1"
_set = object.__setattr__


def replaced(model: M, **update: Any) -> M:
    """A shallow copy of ``model`` with the fields in ``update`` replaced (not validated)."""
    cls = type(model)
    copied = cls.__new__(cls)
    values = model.__dict__.copy()
    values.update(update)
    _set(copied, "__dict__", values)
    extra = model.__pydantic_extra__
    _set(copied, "__pydantic_extra__", None if extra is None else extra.copy())
    fields = model.__pydantic_fields_set__.copy()
    fields.update(update)
    _set(copied, "__pydantic_fields_set__", fields)
    _set(copied, "__pydantic_private__", None)
    return copied
