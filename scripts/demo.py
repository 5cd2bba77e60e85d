"""The main job, end to end: export the default model, serve it on Triton, classify examples.

Until the real offline default model lands, the default is a toy RoBERTa with random weights
(built on the spot, no hub needed): the pipeline is real, the emotions it predicts are not.
"""

from __future__ import annotations

from pathlib import Path

from transformers.utils import logging as transformers_logging

from emoclient import Client
from emoexport import toy_models
from emoexport.exporter import ExportOptions, export_classifier
from emoserve import LocalServer

ROOT = Path(__file__).resolve().parent.parent
NAME = "go_emotions_toy"
EXAMPLES = [
    "Thank you so much!",
    "I am not having a great day",
    "Wow, I did not expect that at all.",
    "This is the worst customer service I have ever had.",
]


def main() -> None:
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    repository = ROOT / "model_repository"
    source = toy_models.build("roberta-multilabel", ROOT / "build" / "toy-roberta-go-emotions")
    export_classifier(
        str(source), ExportOptions(name=NAME, repository=repository, overwrite=True), log=print
    )
    with LocalServer(repository) as server, Client(server.endpoints.grpc_url) as client:
        print(f"\nserving {NAME} on {server.endpoints.grpc_url} (gRPC)\n")
        for text, result in zip(EXAMPLES, client.classify(EXAMPLES, model=NAME)):
            best = ", ".join(f"{label} {score:.2f}" for label, score in result.top(3))
            print(f"{text:55s} → {best}")
    print(
        "\nThe server stopped with this script. To keep serving the repository:\n"
        "  make serve\n"
        f'  .venv/bin/emotriton classify --model {NAME} "Thank you so much!"'
    )


if __name__ == "__main__":
    main()
