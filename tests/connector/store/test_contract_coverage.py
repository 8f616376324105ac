"""Every part of the store has a contract suite, and every backend runs them all.

The parts are the protocols of :mod:`connector.store_protocol` that declare methods of their
own and that :class:`~connector.store_protocol.SessionStore` is made of; each contract module
(``test_*_contract.py`` beside this file) names the part it checks in ``PART``. The backends
are the classes :func:`connector.store.open_store` can return and the package exports; the
contract suites run against each entry of ``BACKENDS`` (``contract.py``). A new part or a
new backend without its suite fails here.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path
from types import ModuleType
from typing import Protocol

import connector.store
from connector import store_protocol
from connector.store_protocol import Lock, SessionStore
from tests.connector.store.contract import BACKENDS, FakeClock

HERE = Path(__file__).parent
PACKAGE = __name__.rpartition(".")[0]
# Protocols with methods that are no part to check on their own: the whole store (its start
# and close run around every contract test) and the per-session lock (tests/connector).
NOT_PARTS: set[type] = {SessionStore, Lock}


def is_protocol(value: object) -> bool:
    """A class is a protocol only if it lists ``Protocol`` among its bases."""
    return isinstance(value, type) and Protocol in value.__bases__


def own_methods(protocol: type) -> list[str]:
    """The public methods a protocol declares itself (not those it inherits)."""
    return [n for n, v in vars(protocol).items() if inspect.isfunction(v) and n[0] != "_"]


def parts() -> set[type]:
    """The store protocols that declare methods of their own: the parts of the store."""
    declared = [v for v in vars(store_protocol).values() if is_protocol(v)]
    return {p for p in declared if p.__module__ == store_protocol.__name__ and own_methods(p)}


def contract_modules() -> list[ModuleType]:
    """Every contract module beside this file."""
    paths = sorted(HERE.glob("test_*_contract.py"))
    return [importlib.import_module(f"{PACKAGE}.{path.stem}") for path in paths]


def backend_classes() -> set[type]:
    """The classes ``open_store`` returns (read from its source) and the classes the package
    exports that are not protocols."""
    tree = ast.parse(inspect.getsource(connector.store.open_store))
    names = {
        node.value.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Return)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
    }
    names.update(connector.store.__all__)
    found = (getattr(connector.store, name) for name in names)
    return {v for v in found if isinstance(v, type) and not is_protocol(v)}


def test_every_part_of_the_store_has_a_contract_module_that_names_it() -> None:
    named = {module.PART for module in contract_modules()}
    missing = sorted(p.__name__ for p in parts() - NOT_PARTS - named)
    assert not missing, f"no test_*_contract.py has PART = one of {missing}"
    unknown = sorted(p.__name__ for p in named - (parts() - NOT_PARTS))
    assert not unknown, f"PART names no part of the store: {unknown}"


def test_every_part_of_the_store_is_one_a_whole_store_is_made_of() -> None:
    outside = sorted(p.__name__ for p in parts() - NOT_PARTS if p not in SessionStore.__mro__)
    assert not outside, f"parts no backend has to implement (not in SessionStore): {outside}"


def test_every_backend_runs_the_contract_suites(tmp_path: Path) -> None:
    # Building a store opens nothing (open_store's promise), so each entry can be looked at.
    run = {type(build(tmp_path, FakeClock())) for build in BACKENDS.values()}
    assert run == backend_classes()


def test_every_contract_test_takes_the_store_of_each_backend() -> None:
    for module in contract_modules():
        tests = [v for n, v in vars(module).items() if n.startswith("test_")]
        assert tests, module.__name__
        for test in tests:
            assert "store" in inspect.signature(test).parameters, (module.__name__, test)


def test_every_contract_module_says_which_part_it_checks_and_who_must_pass_it() -> None:
    for module in contract_modules():
        doc = " ".join((module.__doc__ or "").split())
        assert module.PART.__name__ in doc, module.__name__
        assert "Every backend must pass it." in doc, module.__name__
