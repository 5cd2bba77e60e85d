"""Served decisions against in-process inference, on every text of a labelled split.

In-process, for an encoder + head model (`--head`): sentence-transformers' encode (cached), the
head in onnxruntime, the head's thresholds. For a fine-tuned classifier (`--classifier DIR`):
transformers at float32, sigmoid and DIR/thresholds.json, or softmax and argmax. Served: the
ensemble through emoclient. Prints the largest probability difference and how many texts' label
sets differ, and exits 1 if a decision differs anywhere but within 1e-5 of its threshold (or, for
argmax, of a tie).

    python scripts/check_served_predictions.py --model go_emotions_head --url localhost:8001
    python scripts/check_served_predictions.py --model go_emotions \\
        --classifier models/go_emotions-minilm-l6
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from emoclient import Client
from emoexport.head import THRESHOLDS_FILE, load_head
from emoexport.locate import MINILM_L6
from emoexport.sentence_encoder import cached_embeddings, load_sentence_encoder
from emotrain.datasets import LabelledSplit, load_split

ROOT = Path(__file__).resolve().parent.parent
# A decision may differ where the score is this close to what decides it.
MARGIN = 1e-5


def head_scores(args: argparse.Namespace, split: LabelledSplit) -> tuple[tuple, np.ndarray, list]:
    """Labels, probabilities [texts, labels] and thresholds of the encoder + head model."""
    head = load_head(str(args.head))
    encoder = load_sentence_encoder(args.encoder)
    embeddings = cached_embeddings(encoder, split.texts, args.cache_dir)
    return head.labels, head.positive_probabilities(embeddings), list(head.thresholds)


def classifier_scores(directory: Path, split: LabelledSplit) -> tuple[tuple, np.ndarray, list]:
    """The same for a sequence classifier directory; thresholds None for argmax."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from emotrain.finetune import MULTI_LABEL, score_texts

    model = AutoModelForSequenceClassification.from_pretrained(directory, dtype=torch.float32)
    labels = tuple(model.config.id2label[i] for i in range(model.config.num_labels))
    problem_type = model.config.problem_type
    scores = score_texts(model, AutoTokenizer.from_pretrained(directory), split.texts, problem_type)
    if problem_type != MULTI_LABEL:
        return labels, scores, None
    chosen = json.loads((directory / THRESHOLDS_FILE).read_text())
    return labels, scores, [chosen[label] for label in labels]


def decisions(scores: np.ndarray, thresholds: list | None) -> tuple[np.ndarray, np.ndarray]:
    """bool decisions and, per text and label, whether the score is within MARGIN of flipping."""
    if thresholds is not None:
        return scores >= np.array(thresholds), np.abs(scores - np.array(thresholds)) <= MARGIN
    top = np.sort(scores, axis=1)[:, -2:]
    chosen = np.eye(scores.shape[1], dtype=bool)[scores.argmax(axis=1)]
    tied = np.repeat((top[:, 1] - top[:, 0] <= MARGIN)[:, None], scores.shape[1], axis=1)
    return chosen, tied


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="go_emotions_head")
    parser.add_argument("--url", default="localhost:8001")
    parser.add_argument("--classifier", type=Path, help="fine-tuned classifier directory")
    parser.add_argument("--encoder", default=MINILM_L6)
    parser.add_argument(
        "--head", default=ROOT / "export" / "heads" / "go_emotions-all-MiniLM-L6-v2"
    )
    parser.add_argument("--data", default=ROOT.parent / "shared" / "data" / "go_emotions")
    parser.add_argument("--split", default="test")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path.home() / ".cache/emotriton/embeddings"
    )
    args = parser.parse_args()

    split = load_split(args.data, args.split)
    if args.classifier:
        labels, local, thresholds = classifier_scores(args.classifier, split)
    else:
        labels, local, thresholds = head_scores(args, split)
    local_decisions, close = decisions(local, thresholds)

    with Client(args.url) as client:
        results = client.classify(split.texts, model=args.model)
    served = np.array([[r.scores[label] for label in labels] for r in results])
    served_decisions = np.array([[label in r.labels for label in labels] for r in results])

    differs = local_decisions != served_decisions
    unexplained = int((differs & ~close).any(axis=1).sum())
    print(
        f"{len(split.texts)} texts of {split.name}: max |Δprobability| "
        f"{np.abs(served - local).max():.2e}; texts whose label sets differ: "
        f"{int(differs.any(axis=1).sum())}, of them not within {MARGIN:g} of a threshold: "
        f"{unexplained}"
    )
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
