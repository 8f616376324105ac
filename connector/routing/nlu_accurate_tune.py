"""Fine-tuning of the accurate tier's encoder on the training data, and its export to ONNX.

all-MiniLM-L6-v2 was trained to place paraphrases near each other, not to tell 150 intents
apart: a linear head on its frozen embeddings stops near 94.5% on CLINC150. So the encoder is
trained with the head, by cross-entropy over the intents (the out-of-scope class one of
them), for a few epochs with a linear warm-up and decay. The word-piece embedding table (12M
of the model's 22M weights) stays as shipped: each step would otherwise update all of it for
the few pieces a batch has, which costs ten times the rest of the step on a CPU, and the
pieces an intent needs are already placed well.

The trained model (encoder, mean pooling, head) is exported to ONNX, and the classifier runs
it with ONNX Runtime: classifying needs neither torch nor transformers, and is about twice
as fast as torch for one short message on one thread.
"""

from __future__ import annotations

import io
import math
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import transformers
from transformers import BertModel

from connector.routing.nlu_accurate_text import Tokens, model_dir

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TuneSettings:
    """How the encoder is fine-tuned."""

    epochs: int = 3
    """On CLINC150 val a third epoch still gained a little (95.4, 96.5, 96.7% after 1, 2, 3)."""
    min_steps: int = 400
    """Small data gets more epochs, up to this many steps: 10 examples per intent are
    otherwise a few dozen steps, too few for the head to settle."""
    batch: int = 32
    lr: float = 1e-4
    head_lr: float = 1e-3
    """The head starts from zero knowledge, the encoder from a good model: ten times the rate."""
    warmup: float = 0.06
    weight_decay: float = 0.01
    dropout: float = 0.1
    quantize: bool = True
    """Store the encoder's weights as int8 (ONNX Runtime's dynamic quantization): a model a
    quarter the size that classifies about twice as fast, for a few tenths of a point."""
    seed: int = 0
    threads: int = 1
    """Training threads. Where the cores are shared with other work, a second thread mostly
    waits for the first at the end of every operation: one thread trained faster, here."""


class IntentModel(torch.nn.Module):  # type: ignore[misc]  # torch is not analysed: see pyproject
    """Encoder, mean pooling over the message's pieces, dropout, and a linear head."""

    def __init__(self, encoder: Any, n_classes: int, dropout: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(int(encoder.config.hidden_size), n_classes)

    def forward(self, input_ids: Any, attention_mask: Any) -> Any:
        """Logits (batch, classes) for zero-padded ids and their mask."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        mask = attention_mask.unsqueeze(-1).to(hidden.last_hidden_state.dtype)
        pooled = (hidden.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(self.dropout(pooled))


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch on ``n`` threads, then give back the count the process had."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fine_tune(
    texts: Sequence[str],
    labels: Sequence[int],
    n_classes: int,
    *,
    settings: TuneSettings | None = None,
    progress: Progress | None = None,
) -> bytes:
    """Train the encoder and a head on ``(texts, labels)``; return the model as ONNX bytes.

    The ONNX graph takes ``input_ids`` and ``attention_mask`` (int64, batch x pieces) and
    gives ``logits`` (batch x ``n_classes``). ``progress(done, total)`` is called after every
    step, and once more after the export.
    """
    s = settings or TuneSettings()
    tokens = Tokens()
    with torch_threads(s.threads):
        torch.manual_seed(s.seed)
        model = IntentModel(_encoder(), n_classes, s.dropout)
        model.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
        per_epoch = math.ceil(len(texts) / s.batch)
        epochs = max(s.epochs, math.ceil(s.min_steps / per_epoch))
        total = per_epoch * epochs
        encoder_params = [p for p in model.encoder.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            [{"params": encoder_params, "lr": s.lr},
             {"params": list(model.head.parameters()), "lr": s.head_lr}],
            weight_decay=s.weight_decay,
        )  # fmt: skip
        warmup = max(1.0, s.warmup * total)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, 1 - step / total)
        )
        target = torch.tensor(list(labels), dtype=torch.long)
        rng = np.random.default_rng(s.seed)
        model.train()
        done = 0
        for _ in range(epochs):
            for batch in _batches(texts, s.batch, rng):
                ids, mask = tokens.many([texts[i] for i in batch])
                logits = model(torch.from_numpy(ids), torch.from_numpy(mask))
                loss = torch.nn.functional.cross_entropy(logits, target[batch])
                loss.backward()
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                done += 1
                if progress is not None:
                    progress(done, total + 1)
        model.eval()
        blob = export_onnx(model, tokens)
    if s.quantize:
        blob = quantize(blob)
    if progress is not None:
        progress(total + 1, total + 1)
    return blob


def quantize(onnx_model: bytes) -> bytes:
    """The model with int8 weights for its matrix products, activations quantized per call."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
        source.write_bytes(onnx_model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # advice to run its pre-processing: not needed here
            quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        return target.read_bytes()


def _batches(
    texts: Sequence[str], size: int, rng: np.random.Generator
) -> list[npt.NDArray[np.intp]]:
    """One epoch's batches, in random order, of examples of about the same length.

    A batch is padded to its longest example: sorted by length within windows of 50 batches
    (the order stays random enough to train on), an epoch costs about a third less.
    """
    perm = rng.permutation(len(texts))
    window = size * 50
    batches = []
    for start in range(0, len(perm), window):
        part = sorted(perm[start : start + window].tolist(), key=lambda i: len(texts[i]))
        batches += [np.array(part[i : i + size], dtype=np.intp) for i in range(0, len(part), size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _encoder() -> Any:
    """The bundled all-MiniLM-L6-v2 encoder, read from the package's files only."""
    transformers.logging.disable_progress_bar()
    return BertModel.from_pretrained(str(model_dir()), local_files_only=True)


def export_onnx(model: IntentModel, tokens: Tokens) -> bytes:
    """The model as an ONNX graph with dynamic batch and length axes."""
    ids, mask = tokens.many(["an example message to trace", "and another"])
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode():
        # The tracing exporter warns about branches that the mask makes constant (no causal
        # mask, no padding beyond the mask): true of every input this graph gets.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.from_numpy(ids), torch.from_numpy(mask)),
            buffer,
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={"input_ids": {0: "batch", 1: "pieces"},
                          "attention_mask": {0: "batch", 1: "pieces"},
                          "logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )  # fmt: skip
    return buffer.getvalue()
