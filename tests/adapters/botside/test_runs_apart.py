"""adapters.botside runs in bots' and services' processes, without midtier's server.

Two checks, each catching what the other cannot: reading every import statement with ``ast``
(also those inside functions, which importing a module never runs), and importing each module
in a fresh interpreter where ``connector`` and the server's adapters cannot be imported, with
no more than the module says it needs.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from support.rasa_fake import RASA_PYTHON

REPO = Path(__file__).resolve().parents[3]
BOTSIDE = REPO / "adapters" / "botside"
# Every part of adapters/ that belongs to midtier's server, found rather than listed, so that
# a server adapter added later is covered too.
SERVER_ADAPTERS = sorted(
    f"adapters.{p.stem}"
    for p in (REPO / "adapters").iterdir()
    if p.name not in {"__init__.py", "botside", "__pycache__"} and (p.is_dir() or p.suffix == ".py")
)
SERVER = ["connector", *SERVER_ADAPTERS]

# Run first in each child: make the given packages unimportable, and prove that they are.
BLOCK = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ModuleNotFoundError(f"{{name}} is not importable here", name=name)
        return None
sys.meta_path.insert(0, Block())
for name in BLOCKED:
    try:
        __import__(name)
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit(f"{{name}} could still be imported")
"""


def imported_names(path: Path) -> list[str]:
    """Every module an import statement in ``path`` names, relative ones made absolute."""
    names: list[str] = []
    package = "adapters.botside"
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            names.append(".".join(part for part in (base, node.module or "") if part))
    return names


def run_apart(python: Path | str, code: str, blocked: list[str], *, site: bool = True) -> str:
    """Run ``code`` in a new interpreter with ``blocked`` unimportable; return its stdout."""
    flags = [] if site else ["-S"]  # -S: no site-packages, the standard library alone
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [str(python), *flags, "-c", BLOCK.format(blocked=blocked) + code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_no_bot_side_module_imports_connector_or_a_server_adapter() -> None:
    modules = sorted(BOTSIDE.glob("*.py"))
    assert {p.stem for p in modules} >= {"__init__", "handoff", "rasa", "signing"}
    for path in modules:
        for name in imported_names(path):
            top = name.split(".")[0]
            assert top != "connector", f"{path.name} imports {name}"
            if top == "adapters":
                assert name.startswith("adapters.botside"), f"{path.name} imports {name}"


def test_the_package_imports_nothing_so_each_helper_brings_only_its_own_needs() -> None:
    assert imported_names(BOTSIDE / "__init__.py") == []


def test_the_handoff_helper_works_without_the_server_and_without_botbuilder_core() -> None:
    code = """
from botbuilder.schema import ConversationAccount
from adapters.botside.handoff import HandoffStates, create_handoff_status
event = create_handoff_status(ConversationAccount(id="c1"), HandoffStates.ACCEPTED)
print(event.serialize()["name"])
"""
    out = run_apart(sys.executable, code, [*SERVER, "botbuilder.core"])
    assert out.split() == ["handoff.status"]


def test_the_signing_file_copied_on_its_own_needs_only_the_standard_library() -> None:
    code = f"""
import importlib.util, json
spec = importlib.util.spec_from_file_location("midtier_signing", {str(BOTSIDE / "signing.py")!r})
signing = importlib.util.module_from_spec(spec)
spec.loader.exec_module(signing)
body = b'{{"type": "message"}}'
headers = signing.sign("s3cret", body, timestamp=1_700_000_000)
ts = signing.verify("s3cret", body, headers, now=1_700_000_010)
try:
    signing.verify("other", body, headers, now=1_700_000_010)
    refused = False
except signing.SignatureError:
    refused = True
print(json.dumps([ts, refused, sorted(m for m in __import__("sys").modules if "." not in m)]))
"""
    # All of midtier unimportable: the file is loaded on its own, as a copy in a service is.
    out = run_apart(sys.executable, code, ["connector", "adapters"], site=False)
    ts, refused, modules = json.loads(out)
    assert (ts, refused) == (1_700_000_000, True)
    assert {"adapters", "connector"}.isdisjoint(modules)


def test_the_rasa_action_loads_in_an_action_server_env_that_has_only_rasa_sdk() -> None:
    if not RASA_PYTHON.exists():
        raise AssertionError("run scripts/setup-rasa.sh first: .venv-rasa is missing")
    code = """
from adapters.botside.rasa import ActionHandoff
print(ActionHandoff().name())
"""
    out = run_apart(RASA_PYTHON, code, SERVER)
    assert out.split() == ["action_handoff"]
