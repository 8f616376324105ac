"""The actions module of the Rasa tests' action server (``python -m rasa_sdk --actions ...``).

Runs in ``.venv-rasa`` (rasa-sdk only): it imports midtier's handoff action, as a Rasa bot's
own actions module would.
"""

from adapters.botside.rasa import ActionHandoff

__all__ = ["ActionHandoff"]
