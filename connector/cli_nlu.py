"""The options of ``midtier nlu eval``, kept apart from the evaluation itself so that building
the ``midtier`` command's parser does not import numpy and scikit-learn for every command."""

from __future__ import annotations

import argparse
from pathlib import Path

from connector.routing.tiers import TIERS

CLINC150 = Path("../shared/data/clinc150/data_full.json")
FEW_SHOT = 10  # examples per intent (the out-of-scope class too) with --few-shot
FEW_SHOT_SEEDS = (0, 1, 2)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``midtier nlu eval`` (also those of ``benchmarks/nlu.py``)."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", choices=["clinc150"], help="a known data set")
    source.add_argument("--train", type=Path, help="training examples (Rasa NLU YAML or CSV)")
    parser.add_argument("--data", type=Path, default=CLINC150, help="CLINC150 data_full.json")
    parser.add_argument(
        "--test", type=Path, help="test examples (alone: against the deployment's own model)"
    )
    parser.add_argument("--config", default="bot_configs", help="--test alone: the deployment")
    parser.add_argument(
        "--data-dir", default="data", help="--test alone: its data directory (the model cache)"
    )
    parser.add_argument("--confusion", type=Path, help="--test alone: confusion matrix PNG")
    parser.add_argument("--val", type=Path, help="held-out examples to tune the threshold on")
    parser.add_argument("--tier", choices=[*TIERS, "all"], default="default")
    parser.add_argument("--few-shot", action="store_true",
                        help=f"CLINC150 with {FEW_SHOT} training examples per intent, "
                        f"mean of {len(FEW_SHOT_SEEDS)} draws")  # fmt: skip
    parser.add_argument(
        "--threshold-on",
        choices=["intent", "provider"],
        default="intent",
        help="judge confidence per intent, or per provider (CLINC150: its domains)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per tier per line")
