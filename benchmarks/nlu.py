"""Intent classifier tiers on CLINC150 or any data set: ``midtier nlu eval`` as a script.

    .venv/bin/python benchmarks/nlu.py --dataset clinc150 [--data PATH]
                                       [--tier default|accurate|all] [--few-shot] [--json]
    .venv/bin/python benchmarks/nlu.py --train TRAIN --test TEST [--val VAL] [--tier ...] [--json]

Same options, same output as the command (``connector/routing/nlu_eval.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connector.routing.nlu_eval import main

if __name__ == "__main__":
    sys.exit(main())
