"""Pydantic models on the message path (activities, the intent result) made and copied
without validation's and ``model_copy``'s overhead (some 2-4 us each); the core's own
records are plain dataclasses (:mod:`connector.plain`), which need neither.

:func:`replaced` gives what ``model.model_copy(update=update)`` gives for a model without
private attributes when ``update`` names its fields only: a new instance whose field values
are the same objects (a shallow copy), with ``update`` applied unvalidated and counted as
set. :func:`made` gives what ``cls(**values)`` gives when ``values`` holds every field of
``cls`` (a model without extra fields) with values of their types: it is for records the
core fills from values it made or validated itself, never for input.
``tests/connector/test_modelcopy.py`` checks both against pydantic's own.

``MIDTIER_SELF_CHECKS=1`` (the test suite sets it) turns on checks of the core's own
promises that cost too much for every message otherwise: here, that :func:`made` is given
every field in their order (a dump follows that order, so the JSON is the same byte for byte).
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


def made(cls: type[M], **values: Any) -> M:
    """``cls(**values)`` without validation: ``values`` must name every field of ``cls``, in
    their order, each with a value of its type (what the callers' tests check)."""
    if CHECKING and list(values) != list(cls.__pydantic_fields__):
        raise TypeError(f"made({cls.__name__}): every field, in their order")
    model = cls.__new__(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_fields_set__", set(values))
    _set(model, "__pydantic_private__", None)
    return model
