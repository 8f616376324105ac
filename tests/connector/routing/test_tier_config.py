"""``nlu:`` in routing.yaml picks the classifier tier and its threshold; a tier whose extra
is not installed is refused before anything starts, naming the install command."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from support.server import DEFAULT_CONFIG

from connector.cli import main
from connector.config import load_config
from connector.errors import ConfigErrors
from connector.routing.nlu import classifier_for
from connector.routing.nlu_default import DefaultClassifier

MISSING = "install it with: pip install 'midtier[embeddings]'"


def config_with_nlu(tmp_path: Path, nlu: str) -> Path:
    """A copy of the default deployment whose routing.yaml ends with ``nlu: <nlu>``."""
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config, ignore=shutil.ignore_patterns("__pycache__"))
    with (config / "routing.yaml").open("a") as routing:
        routing.write(f"\nnlu: {nlu}\n")
    return config


def test_the_threshold_of_routing_yaml_reaches_the_classifier(tmp_path: Path) -> None:
    config = load_config(config_with_nlu(tmp_path, "{tier: default, threshold: 0.9}"))
    classifier, trained = classifier_for(config.routing, config.nlu_files, tmp_path / "cache")
    assert (type(classifier), classifier.threshold, trained) == (DefaultClassifier, 0.9, True)
    # From the cache, the configured threshold still holds, not the one it was saved with.
    config.routing.nlu.threshold = 0.2
    again, trained = classifier_for(config.routing, config.nlu_files, tmp_path / "cache")
    assert (again.threshold, trained) == (0.2, False)
    assert again.classify("hello").name == "greet"


def test_a_tier_whose_extra_is_missing_is_refused_by_check_and_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "connector.routing.nlu_accurate", None)  # not importable
    config_dir = config_with_nlu(tmp_path, "{tier: accurate}")
    assert main(["check", "--config", str(config_dir)]) == 1
    err = capsys.readouterr().err
    assert "error: routing.yaml: nlu.tier: the 'accurate' classifier tier is not available" in err
    assert MISSING in err
    data = tmp_path / "data"
    assert main(["run", "--config", str(config_dir), "--data", str(data), "--port", "1"]) == 2
    assert MISSING in capsys.readouterr().err
    assert not data.exists()
    config = load_config(config_dir)
    with pytest.raises(ConfigErrors) as info:
        classifier_for(config.routing, config.nlu_files, tmp_path / "cache")
    [error] = info.value.errors
    assert (error.file, error.key) == ("routing.yaml", "nlu.tier")


def test_an_unknown_tier_or_a_bad_threshold_is_refused_with_its_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as info:
        load_config(config_with_nlu(tmp_path, "{tier: quantum, threshold: 2}"))
    keys = sorted(str(e).split(":")[1].strip() for e in info.value.errors)
    assert keys == ["nlu.threshold", "nlu.tier"]
