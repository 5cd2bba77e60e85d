"""Served decisions against in-process inference, on every text of a labelled split.

In-process: sentence-transformers' encode (cached), the head in onnxruntime, the head's
thresholds. Served: the ensemble through emoclient. Prints the largest probability difference
and how many texts' label sets differ; exits 1 if any does.

    python scripts/check_served_predictions.py --model go_emotions --url localhost:8001
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from emoclient import Client
from emoexport.head import load_head
from emoexport.locate import MINILM_L6
from emoexport.sentence_encoder import cached_embeddings, load_sentence_encoder
from emotrain.datasets import load_split

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="go_emotions")
    parser.add_argument("--url", default="localhost:8001")
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
    head = load_head(str(args.head))
    embeddings = cached_embeddings(load_sentence_encoder(args.encoder), split.texts, args.cache_dir)
    local = head.positive_probabilities(embeddings)
    local_decisions = local >= np.array(head.thresholds)

    with Client(args.url) as client:
        results = client.classify(split.texts, model=args.model)
    served = np.array([[r.scores[label] for label in head.labels] for r in results])
    served_decisions = np.array([[label in r.labels for label in head.labels] for r in results])

    differing = int((local_decisions != served_decisions).any(axis=1).sum())
    print(
        f"{len(split.texts)} texts of {split.name}: max |Δprobability| "
        f"{np.abs(served - local).max():.2e}; texts whose label sets differ: {differing}"
    )
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
