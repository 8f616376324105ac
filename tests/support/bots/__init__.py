"""Real Bot Framework bots for the remote-bot tests, run as processes from ``.venv-bots``."""
