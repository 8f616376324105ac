"""Config loading: typed models, env-var secrets, every error with its file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config import load_config
from connector.errors import ConfigErrors

REPO = Path(__file__).resolve().parents[2]

PROVIDERS = """
providers:
  faq:
    kind: botbuilder
    bot: bots.faq:FaqBot
    credential: ${FAQ_SECRET}
  agents:
    kind: agent_desk
    token: ${AGENT_TOKEN:-fallback-token}
"""
ROUTING = """
fallback: agents
default: faq
routes:
  faq: {intents: [greet]}
  agents: {intents: [talk_to_human], sticky: true}
"""
NLU = 'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n'


def _write(root: Path, **files: str) -> Path:
    (root / "nlu").mkdir(parents=True, exist_ok=True)
    defaults = {"providers.yaml": PROVIDERS, "routing.yaml": ROUTING, "nlu/a.yml": NLU}
    defaults.update({k.replace("__", "/").replace("_yaml", ".yaml"): v for k, v in files.items()})
    for name, text in defaults.items():
        (root / name).write_text(text)
    return root


def _messages(exc: ConfigErrors) -> list[str]:
    return [str(e) for e in exc.errors]


def test_default_deployment_loads() -> None:
    config = load_config(REPO / "bot_configs")
    assert set(config.providers) == {"faq", "disputes", "agents"}
    assert config.routing.fallback == "agents"
    assert config.nlu_files and config.midtier.channels["webchat"].kind == "webchat"


def test_secrets_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAQ_SECRET", "s3cret-value")
    monkeypatch.delenv("AGENT_TOKEN", raising=False)
    config = load_config(_write(tmp_path))
    assert config.providers["faq"].credential == "s3cret-value"
    assert config.providers["agents"].settings["token"] == "fallback-token"


def test_unset_required_env_var_names_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAQ_SECRET", raising=False)
    with pytest.raises(ConfigErrors) as info:
        load_config(_write(tmp_path))
    assert _messages(info.value) == [
        "providers.yaml: providers.faq.credential: environment variable FAQ_SECRET is not set"
    ]


def test_every_error_is_reported_with_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAQ_SECRET", "x")
    routing = """
fallback: nobody
routes:
  faq: {intents: [greet], min_confidence: 2}
  ghost: {intents: [x]}
"""
    midtier = "limits: {max_body_bytes: -1}\nbogus: 1\n"
    with pytest.raises(ConfigErrors) as info:
        load_config(_write(tmp_path, routing_yaml=routing, midtier_yaml=midtier))
    messages = _messages(info.value)
    assert "midtier.yaml: bogus: unknown key" in messages
    assert any(m.startswith("midtier.yaml: limits.max_body_bytes:") for m in messages)
    assert any(m.startswith("routing.yaml: routes.faq.min_confidence:") for m in messages)
    assert len(messages) == 3  # the cross-check runs only on valid files


def test_cross_file_references_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAQ_SECRET", "x")
    routing = "fallback: nobody\nroutes:\n  ghost: {intents: [x]}\n"
    with pytest.raises(ConfigErrors) as info:
        load_config(_write(tmp_path, routing_yaml=routing))
    assert sorted(_messages(info.value)) == [
        "routing.yaml: fallback: 'nobody' is not a provider in providers.yaml",
        "routing.yaml: routes.ghost: no provider of this name in providers.yaml",
    ]


def test_missing_and_broken_files(tmp_path: Path) -> None:
    (tmp_path / "routing.yaml").write_text("routes: [unclosed\n")
    with pytest.raises(ConfigErrors) as info:
        load_config(tmp_path)
    messages = _messages(info.value)
    assert "providers.yaml: file not found" in messages
    assert any(m.startswith("routing.yaml: line") and "not valid YAML" in m for m in messages)
    assert "nlu/: no NLU training data (nlu/*.yml) found" in messages


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors, match="config directory not found"):
        load_config(tmp_path / "nope")


def test_routing_labels_and_interrupts_are_validated_with_their_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAQ_SECRET", "x")
    routing = """
min_confidence: 0.5
fallback: agents
routes:
  faq: {intents: [greet], interrupt_confidence: 0.2}
  agents: {intents: [talk_to_human], interrupt_confidence: 0.6}
labels: {talk_to_human: "  ", greet: 3}
"""
    with pytest.raises(ConfigErrors) as info:
        load_config(_write(tmp_path, routing_yaml=routing))
    messages = _messages(info.value)
    assert any(m.startswith("routing.yaml: labels.talk_to_human:") for m in messages)
    assert any(m.startswith("routing.yaml: labels.greet:") for m in messages)
    assert len(messages) == 2  # the interrupt check runs once the fields are valid
    fixed = routing.replace('labels: {talk_to_human: "  ", greet: 3}', "")
    with pytest.raises(ConfigErrors) as info:
        load_config(_write(tmp_path, routing_yaml=fixed))
    assert _messages(info.value) == [
        "routing.yaml: routes.faq.interrupt_confidence: 0.2 is below the minimum confidence "
        "0.5 this route needs anyway; use 0.5 to let any confident message interrupt"
    ]
    good = fixed.replace("interrupt_confidence: 0.2", "interrupt_confidence: 0.5")
    config = load_config(_write(tmp_path, routing_yaml=good + "labels: {greet: said hello}\n"))
    assert config.routing.routes["agents"].interrupt_confidence == 0.6
    assert config.routing.labels == {"greet": "said hello"}


def test_outbox_settings_are_strict_and_name_their_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAQ_SECRET", "s3cret-value")
    midtier = "outbox:\n  give_up_after_s: 3600\n  max_backoff_s: 60\n"
    config = load_config(_write(tmp_path, midtier_yaml=midtier))
    assert (config.midtier.outbox.give_up_after_s, config.midtier.outbox.max_backoff_s) == (
        3600,
        60,
    )
    broken = "outbox:\n  give_up_after_s: 0\n  give_up_after: 60\n"
    with pytest.raises(ConfigErrors) as caught:
        load_config(_write(tmp_path, midtier_yaml=broken))
    assert _messages(caught.value) == [
        "midtier.yaml: outbox.give_up_after_s: Input should be greater than 0",
        "midtier.yaml: outbox.give_up_after: unknown key",
    ]


def test_check_reports_unset_secrets_together_with_every_other_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import yaml

    from connector.checks import check_config

    config = tmp_path / "config"
    shutil.copytree(Path(__file__).resolve().parents[2] / "bot_configs", config)
    settings = yaml.safe_load((config / "midtier.yaml").read_text())
    settings["channels"]["telegram"] = {
        "kind": "telegram",
        "bot_token": "${CHECK_TG_TOKEN}",
        "secret_token": "${CHECK_TG_SECRET}",
        "colour": "red",
    }
    settings["channels"]["pigeon"] = {"kind": "carrier_pigeon"}
    (config / "midtier.yaml").write_text(yaml.safe_dump(settings))
    monkeypatch.delenv("CHECK_TG_TOKEN", raising=False)
    monkeypatch.delenv("CHECK_TG_SECRET", raising=False)
    problems = [str(e) for e in check_config(config)]
    unset = "midtier.yaml: channels.telegram.{}: environment variable {} is not set"
    assert problems[:2] == [
        unset.format("bot_token", "CHECK_TG_TOKEN"),
        unset.format("secret_token", "CHECK_TG_SECRET"),
    ]
    assert "midtier.yaml: channels.telegram.colour: unknown key" in problems
    assert any(p.startswith("midtier.yaml: channels.pigeon.kind: unknown kind") for p in problems)
    # The empty stand-ins for the unset values are not reported again as bad tokens.
    assert len([p for p in problems if "channels.telegram.bot_token" in p]) == 1
    # Loading for real (midtier run) still refuses to start.
    with pytest.raises(ConfigErrors):
        load_config(config)
