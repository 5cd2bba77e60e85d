"""The front door, through the clients other people use: curl as Triton's docs show it, raw
tritonclient over HTTP (with and without compression) and gRPC (sync, aio, streaming), the KServe
SDK over REST and gRPC, gRPC health checking and a Prometheus parser. Each gets the SDK's scores
bit for bit, or a documented 4xx; and every request Triton 2.51 is crashed or fooled by is
answered at the door while tritonserver keeps its PID.

Each case runs against the local server, and against `emotriton serve` started with the command
line compose, the Kubernetes pods and KServe run (tests/e2e/test_deploy.py holds them equal):
every deployment's way in is the launcher's guards."""

from __future__ import annotations

import asyncio
import gzip
import json
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as grpcaio
import tritonclient.http as httpclient
import tritonclient.http.aio as httpaio
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from emoclient import Client
from emoserve import LocalServer
from emoserve.config import free_ports

from ..support import EMOTRITON, ROOT

MODEL = "emotion"
TEXTS = ["I love this so much", "this is awful", "", "what just happened?", "ok"]
INFER = f"/v2/models/{MODEL}/infer"


@dataclass(frozen=True)
class Door:
    http: str  # HOST:PORT
    grpc: str
    metrics: str  # URL
    repository: Path

    def triton_pid(self) -> int:
        """The tritonserver serving `repository` (one, and the same throughout a test)."""
        found = [
            int(entry.name)
            for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and _is_triton_of(entry, self.repository)
        ]
        assert len(found) == 1, found
        return found[0]


def _is_triton_of(entry: Path, repository: Path) -> bool:
    try:
        arguments = (entry / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return arguments[0].endswith(b"tritonserver") and (
        f"--model-repository={repository}".encode() in arguments
    )


def compose_command() -> list[str]:
    """The triton service's command, for this machine: the wheel's Triton, the test's
    repository and free loopback ports instead of the image's and the container's."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = compose["services"]["triton"]["command"]
    assert command[:2] == ["emotriton", "serve"]
    local = ("--triton-home=", "--repository=", "--host=", "--api-port=")
    return [argument for argument in command[2:] if not argument.startswith(local)]


@pytest.fixture(scope="module")
def small(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    small = tmp_path_factory.mktemp("front-door")
    for part in ("", "_tokenizer", "_encoder", "_postprocess"):
        shutil.copytree(repository / f"{MODEL}{part}", small / f"{MODEL}{part}")
    return small


@pytest.fixture(scope="module", params=["LocalServer", "emotriton serve as compose runs it"])
def door(request: pytest.FixtureRequest, small: Path) -> Iterator[Door]:
    if request.param == "LocalServer":
        with LocalServer(small) as server:
            endpoints = server.endpoints
            yield Door(endpoints.http_url, endpoints.grpc_url, endpoints.metrics_url, small)
        return
    ports = dict(zip(("http", "grpc", "metrics", "api"), free_ports(4)))
    log = (small / "serve.log").open("w")  # Triton's log, which nobody reads here
    process = subprocess.Popen(
        [*EMOTRITON, "serve", *compose_command(), f"--repository={small}", "--host=127.0.0.1",
         *(f"--{name}-port={port}" for name, port in ports.items())],
        stdout=subprocess.PIPE, stderr=log, text=True,
    )  # fmt: skip
    try:
        assert "serving" in _wait_for_line(process, "Ctrl-C stops it."), "serve did not start"
        yield Door(
            f"127.0.0.1:{ports['http']}",
            f"127.0.0.1:{ports['grpc']}",
            f"http://127.0.0.1:{ports['metrics']}/metrics",
            small,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
        log.close()


def _wait_for_line(process: subprocess.Popen[str], last: str) -> str:
    assert process.stdout is not None
    seen = ""
    deadline = time.monotonic() + 120
    while last not in seen and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen += line
    return seen


@pytest.fixture(scope="module")
def expected(door: Door) -> np.ndarray:
    """The SDK's scores of TEXTS: every other client must give these, bit for bit."""
    with Client(door.grpc) as client:
        results = client.classify(TEXTS, model=MODEL)
    return np.array([list(result.scores.values()) for result in results], dtype=np.float32)


def request_json(texts: list[str] = TEXTS) -> dict:
    return {
        "inputs": [{"name": "TEXT", "datatype": "BYTES", "shape": [len(texts), 1], "data": texts}],
        "outputs": [{"name": "SCORES"}],
    }


def scores_of(answer: bytes) -> np.ndarray:
    (scores,) = [o for o in json.loads(answer)["outputs"] if o["name"] == "SCORES"]
    return np.array(scores["data"], dtype=np.float32).reshape(scores["shape"])


def curl(door: Door, *options: str, body: bytes | None = None, path: str = INFER) -> tuple:
    """(status, body) of curl at `path`, the body (if any) from standard input."""
    run = subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", *options,
         *(["--data-binary", "@-"] if body is not None and "-d" not in options else []),
         f"http://{door.http}{path}"],
        input=body, capture_output=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    answer, _, status = run.stdout.rpartition(b"\n")
    return int(status), answer


JSON = ("-H", "Content-Type: application/json")


def test_curl_json_as_tritons_docs_send_it(door: Door, expected: np.ndarray) -> None:
    status, answer = curl(door, *JSON, body=json.dumps(request_json()).encode())
    assert status == 200 and np.array_equal(scores_of(answer), expected)


def test_curl_d_is_served_though_curl_calls_it_a_form(door: Door, expected, tmp_path) -> None:
    """`curl -d @request.json`: curl labels it application/x-www-form-urlencoded."""
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request_json()))
    status, answer = curl(door, "-d", f"@{path}")
    assert status == 200 and np.array_equal(scores_of(answer), expected)


def test_curl_binary_tensor_extension(door: Door, expected: np.ndarray) -> None:
    data = b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in TEXTS)
    header = json.dumps(
        {
            "inputs": [{"name": "TEXT", "datatype": "BYTES", "shape": [len(TEXTS), 1],
                        "parameters": {"binary_data_size": len(data)}}],
            "outputs": [{"name": "SCORES", "parameters": {"binary_data": True}}],
        }
    ).encode()  # fmt: skip
    status, answer = curl(
        door,
        "-H", "Content-Type: application/octet-stream",
        "-H", f"Inference-Header-Content-Length: {len(header)}",
        "-D", "-",
        body=header + data,
    )  # fmt: skip
    assert status == 200
    head, _, payload = answer.partition(b"\r\n\r\n")
    (length,) = [
        int(line.split(b":")[1]) for line in head.split(b"\r\n")
        if line.lower().startswith(b"inference-header-content-length")
    ]  # fmt: skip
    scores = np.frombuffer(payload[length:], dtype=np.float32).reshape(expected.shape)
    assert np.array_equal(scores, expected)


def test_curl_chunked_and_kept_alive(door: Door, expected: np.ndarray, tmp_path) -> None:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request_json()))
    url = f"http://{door.http}{INFER}"
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    run = subprocess.run(
        ["curl", "-sS", *JSON, "-H", "Transfer-Encoding: chunked", "--data-binary", f"@{path}",
         "-o", str(first), url,
         "--next", *JSON, "--data-binary", f"@{path}", "-o", str(second), "-w",
         "%{num_connects}", url],
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"0"  # the second request reused the first one's connection
    for answer in (first, second):
        assert np.array_equal(scores_of(answer.read_bytes()), expected)


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("encoding", "pack"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", raw_deflate)],
    ids=["gzip", "deflate", "raw deflate"],
)
def test_curl_compressed_bodies(door: Door, expected: np.ndarray, encoding: str, pack) -> None:
    body = pack(json.dumps(request_json()).encode())
    status, answer = curl(door, *JSON, "-H", f"Content-Encoding: {encoding}", body=body)
    assert status == 200 and np.array_equal(scores_of(answer), expected)


def triton_input(module) -> object:
    text = module.InferInput("TEXT", [len(TEXTS), 1], "BYTES")
    text.set_data_from_numpy(np.array([[t.encode()] for t in TEXTS], dtype=np.object_))
    return text


@pytest.mark.parametrize("compression", [None, "gzip", "deflate"])
def test_tritonclient_http(door: Door, expected: np.ndarray, compression: str | None) -> None:
    client = httpclient.InferenceServerClient(door.http)
    answer = client.infer(
        MODEL,
        [triton_input(httpclient)],
        request_compression_algorithm=compression,
        response_compression_algorithm=compression,
    )
    assert np.array_equal(answer.as_numpy("SCORES"), expected)
    assert client.is_server_ready() and client.is_model_ready(MODEL)


def test_tritonclient_http_aio(door: Door, expected: np.ndarray) -> None:
    async def call() -> np.ndarray:
        client = httpaio.InferenceServerClient(door.http)
        try:
            answer = await client.infer(MODEL, [triton_input(httpaio)])
            return answer.as_numpy("SCORES")
        finally:
            await client.close()

    assert np.array_equal(asyncio.run(call()), expected)


def test_tritonclient_grpc_sync_aio_and_streaming(door: Door, expected: np.ndarray) -> None:
    client = grpcclient.InferenceServerClient(door.grpc)
    assert np.array_equal(client.infer(MODEL, [triton_input(grpcclient)]).as_numpy("SCORES"),
                          expected)  # fmt: skip
    answers: list = []
    client.start_stream(callback=lambda result, error: answers.append(error or result))
    client.async_stream_infer(MODEL, [triton_input(grpcclient)])
    client.stop_stream()
    (streamed,) = answers
    assert np.array_equal(streamed.as_numpy("SCORES"), expected)

    async def call() -> np.ndarray:
        aio = grpcaio.InferenceServerClient(door.grpc)
        try:
            return (await aio.infer(MODEL, [triton_input(grpcaio)])).as_numpy("SCORES")
        finally:
            await aio.close()

    assert np.array_equal(asyncio.run(call()), expected)


def top_labels(door: Door, expected: np.ndarray, k: int) -> list[list[str]]:
    """Triton's classification extension's answer for `expected`: "score:index:label", the
    score as C's %f prints it, highest first."""
    with Client(door.grpc) as client:
        labels = client.model(MODEL).labels
    return [
        [f"{row[i]:f}:{i}:{labels[i]}" for i in np.argsort(-row, kind="stable")[:k]]
        for row in expected
    ]


def test_the_classification_extension_names_the_top_labels(door: Door, expected) -> None:
    """Any v2 client can ask Triton for the top k labels: SCORES declares its label file."""
    want = top_labels(door, expected, 3)
    for module, url in ((httpclient, door.http), (grpcclient, door.grpc)):
        client = module.InferenceServerClient(url)
        top = module.InferRequestedOutput("SCORES", class_count=3)
        answer = client.infer(MODEL, [triton_input(module)], outputs=[top])
        got = [[entry.decode() for entry in row] for row in answer.as_numpy("SCORES")]
        assert got == want, module.__name__
    body = request_json()
    body["outputs"] = [{"name": "SCORES", "parameters": {"classification": 2}}]
    status, answer = curl(door, *JSON, body=json.dumps(body).encode())
    assert status == 200, answer
    (scores,) = json.loads(answer)["outputs"]
    assert scores["datatype"] == "BYTES" and scores["shape"] == [len(TEXTS), 2]
    assert scores["data"] == [label for row in top_labels(door, expected, 2) for label in row]


KSERVE_CLIENT = """
import asyncio, json, sys
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig
http, grpc_url, texts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
def request():
    return InferRequest("emotion", [InferInput("TEXT", [len(texts), 1], "BYTES", data=texts)])
def scores(answer):
    (out,) = [o for o in answer.outputs if o.name == "SCORES"]
    return out.as_numpy().tolist()
async def main():
    rest = InferenceRESTClient(RESTConfig(protocol="v2"))
    base = f"http://{http}"
    ready = [await rest.is_server_ready(base), await rest.is_server_live(base),
             await rest.is_model_ready(base, "emotion")]
    answered = scores(await rest.infer(base, request(), model_name="emotion"))
    await rest.close()
    remote = InferenceGRPCClient(grpc_url)
    ready.append(await remote.is_server_ready())
    print(json.dumps({"ready": ready, "rest": answered,
                      "grpc": scores(await remote.infer(request()))}))
asyncio.run(main())
"""


def test_the_kserve_sdk(door: Door, expected: np.ndarray) -> None:
    """In a process of its own: its protos and tritonclient's share names, and one process
    cannot load both."""
    run = subprocess.run(
        [sys.executable, "-c", KSERVE_CLIENT, door.http, door.grpc, json.dumps(TEXTS)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert answer["ready"] == [True, True, True, True]
    for protocol in ("rest", "grpc"):
        assert np.array_equal(np.array(answer[protocol], dtype=np.float32), expected)


def test_grpc_health_checking(door: Door) -> None:
    with grpc.insecure_channel(door.grpc) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_health_bodies_follow_the_kserve_spec(door: Door) -> None:
    for kind in ("ready", "live"):
        with urllib.request.urlopen(f"http://{door.http}/v2/health/{kind}", timeout=10) as answer:
            assert json.loads(answer.read()) == {kind: True}


def test_a_prometheus_parser_reads_the_metrics(door: Door) -> None:
    with Client(door.grpc) as client:
        client.classify(TEXTS, model=MODEL)
    with urllib.request.urlopen(door.metrics, timeout=10) as answer:
        families = {f.name: f for f in text_string_to_metric_families(answer.read().decode())}
    success = families["nv_inference_request_success"]
    assert any(s.labels.get("model") == MODEL and s.value > 0 for s in success.samples)


# Requests that crash, fool or blame Triton 2.51, each refused at the door (docs/reliability.md
# lists them with the release that fixed each upstream).
def _deep(levels: int) -> bytes:
    return b'{"inputs":' + b"[" * levels + b"]" * levels + b"}"


_VALID = json.dumps(request_json()).encode()
_BOMB = gzip.compress(b" " * (200 * 2**20))  # 200 KB that inflate to 200 MiB
HAZARDS = {
    "JSON labelled gzip": (("-H", "Content-Encoding: gzip", *JSON), _VALID, 400),
    "a gzip bomb": (("-H", "Content-Encoding: gzip", *JSON), _BOMB, 413),
    "JSON nested 200,000 deep": (JSON, _deep(200_000), 400),
    "Accept-Encoding q=1e999": (("-H", "Accept-Encoding: gzip;q=1e999", *JSON), _VALID, 400),
    "header length abc": (("-H", "Inference-Header-Content-Length: abc", *JSON), _VALID, 400),
    "header length past the body": (
        ("-H", "Inference-Header-Content-Length: 99999999999", *JSON), _VALID, 400,
    ),
    "an empty body": (("-X", "POST", *JSON), None, 400),
    "malformed JSON": (JSON, b'{"inputs": [', 400),
    "a number as BYTES": (JSON, json.dumps({"inputs": [{"name": "TEXT", "datatype": "BYTES",
                                            "shape": [1, 1], "data": [5]}]}).encode(), 400),
    "a negative shape": (JSON, json.dumps({"inputs": [{"name": "TEXT", "datatype": "BYTES",
                                           "shape": [-1, 1], "data": ["x"]}]}).encode(), 400),
    "no inputs": (JSON, b'{"outputs": []}', 400),
    "a priority of -1": (JSON, json.dumps({**request_json(), "parameters": {"priority": -1}})
                         .encode(), 400),
    "a 5 MiB form": (("-H", "Content-Type: application/x-www-form-urlencoded"),
                     b"a=" + b"b" * (5 * 2**20), 415),
    "a form sent with GET": (("-X", "GET", "-H", "Content-Type: application/x-www-form-urlencoded"),
                             b"a=" + b"b" * (5 * 2**20), 415),
    "an encoding Triton lacks": (("-H", "Content-Encoding: br", *JSON), _VALID, 415),
}  # fmt: skip


@pytest.mark.parametrize("case", HAZARDS)
def test_each_hazard_is_refused_at_the_door(door: Door, case: str) -> None:
    options, body, status = HAZARDS[case]
    pid = door.triton_pid()
    answered, answer = curl(door, *options, body=body)
    assert answered == status, answer
    assert json.loads(answer)["error"]  # a message saying what is wrong
    assert door.triton_pid() == pid
    assert curl(door, *JSON, body=_VALID)[0] == 200  # and the door still serves


def test_the_metrics_port_serves_only_get_metrics(door: Door) -> None:
    pid = door.triton_pid()
    form = ("-H", "Content-Type: application/x-www-form-urlencoded")
    big = b"a=" + b"b" * (5 * 2**20)
    metrics = door.metrics.removesuffix("/metrics").removeprefix("http://")
    run = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", *form, "--data-binary", "@-",
         f"http://{metrics}/metrics"],
        input=big, capture_output=True, timeout=60,
    )  # fmt: skip
    assert run.stdout in (b"405", b"415")
    assert door.triton_pid() == pid


def test_texts_without_whitespace_cost_what_max_length_needs(door: Door) -> None:
    """16 texts of 1 MiB of `!` or CJK in one request, two small clients beside it: every
    request is answered (the time it takes is bench's to measure, not a test's)."""
    huge = ["!" * 2**20 if i % 2 else "情" * (2**20 // 3) for i in range(16)]
    with Client(door.grpc, timeout=120) as client, ThreadPoolExecutor(3) as pool:
        small = [pool.submit(_small_calls, door.grpc) for _ in range(2)]
        big = client.classify(huge, model=MODEL)
        answered = [future.result() for future in small]
    assert len(big) == 16 and all(result.scores for result in big)
    assert all(count > 0 for count in answered)


def _small_calls(url: str, calls: int = 20) -> int:
    with Client(url, timeout=60) as client:
        for _ in range(calls):
            client.classify("hello there", model=MODEL)
    return calls
