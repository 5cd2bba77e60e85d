"""One-text latency: through the served ensemble vs in-process onnxruntime, in one run.

The in-process side runs the exported repository's own artefacts: the tokenizer model's
tokenizer.json, the encoder's model.onnx, the head's model.onnx where there is one, and the
postprocess activation. It is the floor: what the ensemble adds on top of it is gRPC, Triton's
scheduling and the hops between models. Prints timings and their ratio; asserts nothing.

    python benchmarks/latency.py --model default --requests 300
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
from google.protobuf import text_format
from transformers.utils import logging as transformers_logging
from tritonclient.grpc import model_config_pb2 as mc

from emoclient import Client
from emoexport.exporter import ExportOptions, export_classifier, export_embedding_classifier
from emoexport.locate import MINILM_L6
from emoexport.triton_models import postprocess, tokenizer
from emoserve import LocalServer
from emotrain import toy_models

ROOT = Path(__file__).resolve().parent.parent
NAME = "bench"
TEXT = "I am not having a great day, and the meeting ran late again."


def export(model: str, build: Path) -> Path:
    repository = build / "repository"
    options = ExportOptions(name=NAME, repository=repository, overwrite=True)
    if model == "default":
        head = ROOT / "export" / "heads" / "go_emotions-all-MiniLM-L6-v2"
        export_embedding_classifier(MINILM_L6, str(head), options)
    else:
        source = toy_models.build("roberta-multilabel", build / "toy-roberta")
        export_classifier(str(source), options)
    return repository


def _config(repository: Path, part: str) -> mc.ModelConfig:
    text = (repository / f"{NAME}_{part}" / "config.pbtxt").read_text()
    return text_format.Parse(text, mc.ModelConfig())


def in_process_pipeline(repository: Path) -> Callable[[], np.ndarray]:
    """The served computation for one text, without Triton."""
    parameters = {k: v.string_value for k, v in _config(repository, "tokenizer").parameters.items()}
    served_tokenizer = tokenizer.load_tokenizer(
        repository / f"{NAME}_tokenizer" / "1" / "tokenizer.json",
        int(parameters["max_length"]),
        parameters["pad_token"],
        int(parameters["pad_id"]),
    )
    encoder = ort.InferenceSession(str(repository / f"{NAME}_encoder" / "1" / "model.onnx"))
    names = [i.name for i in encoder.get_inputs()]
    head_path = repository / f"{NAME}_head" / "1" / "model.onnx"
    head = ort.InferenceSession(str(head_path)) if head_path.exists() else None
    post = {k: v.string_value for k, v in _config(repository, "postprocess").parameters.items()}
    activate = postprocess.ACTIVATIONS[post["activation"]]

    def run() -> np.ndarray:
        (output,) = encoder.run(None, tokenizer.encode(served_tokenizer, [TEXT], names))
        if head is not None:
            pairs = head.run(None, {head.get_inputs()[0].name: output})
            output = np.stack([pair[:, 1] for pair in pairs], axis=1)
        return activate(output)

    return run


def timed(call: Callable[[], object], requests: int) -> list[float]:
    for _ in range(20):
        call()
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


def summary(samples: list[float]) -> str:
    quantiles = statistics.quantiles(samples, n=100)
    mean = statistics.fmean(samples)
    return f"p50 {quantiles[49]:7.2f} ms   p90 {quantiles[89]:7.2f} ms   mean {mean:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["default", "toy"], default="default")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()

    repository = export(args.model, ROOT / "build" / "bench")
    local = in_process_pipeline(repository)
    started = time.perf_counter()
    with LocalServer(repository) as server:
        startup = time.perf_counter() - started
        with Client(server.endpoints.grpc_url) as client:
            served = timed(lambda: client.classify(TEXT, model=NAME), args.requests)
        in_process = timed(local, args.requests)

    print(f"model: {args.model}, {args.requests} sequential one-text requests after warm-up")
    print(f"server start to ready: {startup:.2f} s")
    print(f"ensemble via gRPC:      {summary(served)}")
    print(f"in-process onnxruntime: {summary(in_process)}")
    ratio = statistics.median(served) / statistics.median(in_process)
    print(f"p50 ratio ensemble / in-process: {ratio:.2f}x")


if __name__ == "__main__":
    main()
