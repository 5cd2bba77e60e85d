"""The first requests after a start and after a repair, against steady state, with and without
model_warmup.

For each of two copies of an exported repository, the one as exported (every composing model
warmed up by Triton before it is ready) and one with model_warmup taken out of every config:

1. start a local server; once it is ready, time 10 requests of one text (the first ones);
2. time `--steady` more (steady state);
3. kill -9 the encoder's backend process; once the watchdog has repaired it and the server is
   ready again, time 10 requests.

Every request sends a text of its own (the go_emotions test split, in order), so that none is
answered from the response cache. Reports each p50 in ms, and the ratio of the first 10 to
steady state, as JSON. A measurement: nothing here asserts a timing.

    python scripts/cold_start.py --repository model_repository --model go_emotions \\
        --data ../shared/data/go_emotions --out build/cold-start.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import tritonclient.grpc as grpcclient
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from emoclient import Client
from emoload.bench import machine
from emoload.corpus import read_texts
from emoserve import LocalServer
from emoserve.supervisor import backend_processes

FIRST = 10


def _without_warmup(repository: Path, into: Path) -> Path:
    copy = Path(shutil.copytree(repository, into))
    for path in copy.glob("*/config.pbtxt"):
        config = text_format.Parse(path.read_text(), mc.ModelConfig())
        del config.model_warmup[:]
        path.write_text(text_format.MessageToString(config))
    return copy


def _p50_ms(client: Client, model: str, texts: Iterator[str], count: int) -> float:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        client.classify(next(texts), model=model)
        latencies.append((time.perf_counter() - started) * 1000)
    return statistics.median(latencies)


def _ready_after_repair(server: LocalServer, timeout: float = 120.0) -> None:
    """Once the server said unready (the watchdog saw the stub die) and is ready again."""
    deadline, seen_unready = time.monotonic() + timeout, False
    while time.monotonic() < deadline:
        client = grpcclient.InferenceServerClient(server.endpoints.grpc_url)
        try:
            ready = client.is_server_ready(client_timeout=1)
        except Exception:  # not answering is not ready
            ready = False
        finally:
            client.close()
        seen_unready |= not ready
        if seen_unready and ready:
            return
        time.sleep(0.05)
    raise SystemExit("the server was not repaired in time")


def measure(repository: Path, model: str, texts: Iterator[str], steady: int) -> dict:
    with LocalServer(repository) as server, Client(server.endpoints.grpc_url) as client:
        client.model(model)  # the labels, read once: not a request of the model
        after_start = _p50_ms(client, model, texts, FIRST)
        steady_state = _p50_ms(client, model, texts, steady)
        assert server.process is not None
        stub = next(  # one of the encoder's two instances
            pid
            for pid, name in backend_processes(server.process.pid).items()
            if name == f"{model}_encoder"
        )
        os.kill(stub, signal.SIGKILL)
        _ready_after_repair(server)
        after_repair = _p50_ms(client, model, texts, FIRST)
    return {
        "first 10 after start, p50 ms": round(after_start, 2),
        "steady state, p50 ms": round(steady_state, 2),
        "first 10 after a kill -9 and repair, p50 ms": round(after_repair, 2),
        "after start / steady": round(after_start / steady_state, 2),
        "after repair / steady": round(after_repair / steady_state, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repository", type=Path, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", type=Path, help="go_emotions folder (default: loadtest corpus)")
    parser.add_argument("--steady", type=int, default=200, help="steady-state requests")
    parser.add_argument("--out", type=Path, default=Path("build/cold-start.json"))
    args = parser.parse_args()
    texts = iter(read_texts(args.data, 2 * (2 * FIRST + args.steady)))
    with tempfile.TemporaryDirectory() as scratch:
        cold = _without_warmup(args.repository, Path(scratch) / "repository")
        report = {
            "machine": machine(),
            "model": args.model,
            "without model_warmup": measure(cold, args.model, texts, args.steady),
            "with model_warmup": measure(args.repository, args.model, texts, args.steady),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
