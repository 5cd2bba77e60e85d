"""Faults under load: a backend process killed, the HTTP request that kills Triton (refused by
the guard, and survived without it), SIGTERM; the admin APIs locked; malformed and huge requests
beside valid ones; overload shed. Each test is bounded in time and requests; loopback only."""

from __future__ import annotations

import json as json_module
import os
import shutil
import signal
import stat
import struct
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from emoclient import Client, OverloadedError, RetryPolicy
from emoclient.protocol import TEXT_INPUT
from emoserve import ADMIN_HEADER, ADMIN_KEY_VARIABLE, LocalServer
from emoserve.config import EXIT_TIMEOUT_SECS, free_port
from emoserve.http_guard import MAX_BODY_BYTES
from emoserve.shared_memory import SHM
from emoserve.supervisor import backend_processes

from ..support import EMOTRITON
from .traffic import KEY, MODEL, TEXT, Load, load_on

GRPC_RECONNECT_BACKOFF = 1.5


def is_ready(server: LocalServer) -> bool:
    """Triton's readiness over gRPC, on a new channel each time (no reconnect backoff after a
    restart). Over HTTP, a request that lands on the front-end thread running the repair's
    blocking load waits for it and misses the short unready window (about 0.1 s)."""
    client = grpcclient.InferenceServerClient(server.endpoints.grpc_url)
    try:
        return client.is_server_ready(client_timeout=1)
    except InferenceServerException:
        return False
    finally:
        client.close()


def post(url: str, megabytes: float, content_type: str) -> int:
    """The status of a POST of `megabytes` of "a" to `url`."""
    request = urllib.request.Request(
        url, b"a" * int(megabytes * 2**20), headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def watch_readiness(server: LocalServer, since: float, timeout: float) -> tuple[float, float]:
    """Seconds after `since` until the server first answers not ready, then ready again."""
    unready = None
    while time.monotonic() - since < timeout:
        ready = is_ready(server)
        if unready is None and not ready:
            unready = time.monotonic() - since
        elif unready is not None and ready:
            return unready, time.monotonic() - since
        time.sleep(0.005)  # a repair can take under 0.1 s: look often
    raise AssertionError(f"not ready again within {timeout}s (unready after {unready})")


@pytest.mark.parametrize("model", ["tokenizer", "encoder", "postprocess"])
def test_a_killed_backend_process_is_replaced(toy_server: LocalServer, model: str) -> None:
    """Before: requests failed for good and readiness said 200. Now: readiness drops within
    2 s, the model serves again within 30 s, and no answer is wrong."""
    # The model's first stub (the encoder has two instances: the other keeps serving).
    stub = next(
        p for p, m in backend_processes(toy_server.process.pid).items() if m == f"{MODEL}_{model}"
    )
    with load_on(toy_server, [TEXT]) as load:
        time.sleep(1)
        killed = time.monotonic()
        os.kill(stub, signal.SIGKILL)
        unready, ready = watch_readiness(toy_server, killed, timeout=30)
        time.sleep(1)
    served_again = min(start for start, _, outcome in load.outcomes if start > killed + ready)
    failed = load.failed()
    print(f"{model}: unready after {unready:.2f}s, ready after {ready:.2f}s, "
          f"{len(failed)} failed of {len(load.outcomes)}")  # fmt: skip
    assert unready <= 2 and served_again - killed <= 30
    assert load.wrong() == 0
    # Only requests sent before readiness dropped may fail: those in flight, or sent to a
    # process the watchdog had not yet seen die.
    assert all(start <= killed + unready for start, _, _ in failed), failed
    assert any(start > killed + ready for start, _, outcome in load.outcomes if outcome == "ok")


def test_the_http_guard_refuses_what_kills_triton(toy_server: LocalServer) -> None:
    """With the launcher's defaults, the form bodies that kill Triton's HTTP servers get 415 on
    the HTTP and metrics ports, and an oversized body 413: Triton never reads them, its process
    stays the same, and gRPC and HTTP requests sent meanwhile all succeed, right."""
    pid, restarts = toy_server.process.pid, len(toy_server.supervisor.recoveries)
    ready = f"http://{toy_server.endpoints.http_url}/v2/health/ready"
    metrics = toy_server.endpoints.metrics_url
    with (
        load_on(toy_server, [TEXT], clients=1, pause=0.2) as grpc_load,
        load_on(toy_server, [TEXT], clients=1, protocol="http", pause=0.2) as http_load,
    ):
        time.sleep(1)
        assert post(ready, 4.5, "application/x-www-form-urlencoded") == 415
        assert post(ready, 50, "application/x-www-form-urlencoded; charset=UTF-8") == 415
        assert post(ready, 5, "multipart/form-data; boundary=x") == 415
        assert post(metrics, 50, "application/x-www-form-urlencoded") == 405  # GET /metrics only
        assert post(ready, MAX_BODY_BYTES / 2**20 + 1, "application/json") == 413
        assert post(ready, 50, "application/json") == 400  # not JSON: refused at the door too
        time.sleep(1)
    outcomes = {"grpc": grpc_load, "http": http_load}
    print(", ".join(f"{name}: {len(load.failed())} failed of {len(load.outcomes)}"
                    for name, load in outcomes.items()))  # fmt: skip
    assert toy_server.process.pid == pid and toy_server.process.returncode() is None
    assert len(toy_server.supervisor.recoveries) == restarts
    for load in outcomes.values():
        assert load.outcomes and load.failed() == []


@pytest.mark.parametrize("megabytes", [4.5, 50])
def test_the_http_request_that_kills_triton_is_survived(toy_server: LocalServer, megabytes: float):
    """Triton 2.51's HTTP front end dies (SIGSEGV) on a large form-urlencoded body. The guard
    keeps such bodies away from it; sent to Triton's own port, around the guard, the body kills
    it, and the supervisor (the fallback) starts it again and removes what the dead one left.
    The guard goes on forwarding to the restarted server (503 while it is down)."""
    body = b"a" * int(megabytes * 2**20)
    http_load = load_on(toy_server, [TEXT], clients=1, protocol="http", pause=0.05)
    with load_on(toy_server, [TEXT]) as load, http_load:
        time.sleep(1)
        dead_prefix = toy_server.process.shm_prefix
        sent = time.monotonic()
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(
                f"http://{toy_server.config.triton_http_url}/v2/health/ready", body
            )
        _, ready = watch_readiness(toy_server, sent, timeout=60)
        time.sleep(1)
    restart = toy_server.supervisor.recoveries[-1]
    counts = {
        name: f"{len(each.failed())} failed of {len(each.outcomes)}"
        for name, each in (("gRPC", load), ("HTTP through the guard", http_load))
    }
    print(f"{megabytes} MiB: restarted in {restart.seconds:.1f}s, {counts}")
    assert restart.action == "restart" and restart.subject == str(-signal.SIGSEGV)
    assert load.wrong() == http_load.wrong() == 0
    # A gRPC channel that saw the port closed waits out its reconnect backoff (1 s, with
    # jitter) before it tries again: a client's matter, not the server's. HTTP has none.
    for each, window in ((load, ready + GRPC_RECONNECT_BACKOFF), (http_load, ready)):
        late = [(start - sent, out) for start, _, out in each.failed() if start > sent + window]
        assert not late, (ready, late)
    assert any(start > sent + ready for start, _, outcome in http_load.outcomes if outcome == "ok")
    assert not list(SHM.glob(f"{dead_prefix}*"))


def test_admin_apis_need_the_key(toy_server: LocalServer) -> None:
    http = f"http://{toy_server.endpoints.http_url}"
    json = {"Content-Type": "application/json"}  # urllib's default is a form: the guard's 415
    calls = {
        "logging": ("/v2/logging", b'{"log_verbose_level": 2}'),
        "repository": ("/v2/repository/models/x/load", b"{}"),
        "shared memory": (
            "/v2/systemsharedmemory/region/x/register",
            b'{"key": "/x", "offset": 0, "byte_size": 64}',
        ),
        "trace": ("/v2/trace/setting", None),
    }
    for name, (path, body) in calls.items():
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(http + path, body, headers=json))
        assert refused.value.code == 403, name
    for path, body in (calls["trace"],):
        request = urllib.request.Request(http + path, body, headers={ADMIN_HEADER: KEY, **json})
        with urllib.request.urlopen(request) as response:
            assert response.status == 200
    # Statistics say what /metrics says: open, so perf_analyzer needs no key on its command line.
    with urllib.request.urlopen(http + "/v2/models/stats") as response:
        assert response.status == 200
    # Which models are served is no secret: the guard serves the index (read only) to anyone.
    index = urllib.request.Request(http + "/v2/repository/index", b"{}", headers=json)
    with urllib.request.urlopen(index) as response:
        assert MODEL in [entry["name"] for entry in json_module.loads(response.read())]

    triton = grpcclient.InferenceServerClient(toy_server.endpoints.grpc_url)
    with pytest.raises(Exception, match="restricted"):
        triton.update_log_settings({"log_verbose_level": 2})
    with pytest.raises(Exception, match="restricted"):
        triton.register_system_shared_memory("x", "/x", 64)
    # gRPC metadata carries the key under Triton's prefix.
    admin = {f"triton-grpc-protocol-{ADMIN_HEADER}": KEY}
    assert triton.get_model_repository_index(headers=admin).models
    # Inference, health and a model's config stay open to every client.
    assert triton.is_server_ready() and triton.get_model_config(MODEL).config.name == MODEL
    assert KEY not in toy_server.process.log_path.read_text(errors="replace")


def test_sigterm_drains_requests_in_flight_and_leaves_no_shared_memory(
    toy_repository: Path,
) -> None:
    """Before: 5 of 6 requests in flight failed and 2 regions stayed in /dev/shm. Now: every
    request in flight finishes, the process exits within the grace period, and the regions
    (0600 while it ran) are gone, stale ones from a killed run too."""
    stale = SHM / "emotriton_999999999_1_0_left-by-a-killed-run"
    stale.write_bytes(b"x")
    ports = [str(free_port()) for _ in range(3)]
    serve = subprocess.Popen(
        [*EMOTRITON, "serve", "--repository", str(toy_repository), "--http-port", ports[0],
         "--grpc-port", ports[1], "--metrics-port", ports[2], "--api-port", "0"],
        env={**os.environ, ADMIN_KEY_VARIABLE: KEY},
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        banner = ""
        while "Ctrl-C stops it." not in banner:
            line = serve.stdout.readline()
            assert line, "emotriton serve exited while starting"
            banner += line
        assert not stale.exists()
        mine = [p for p in SHM.glob("emotriton_*") if f"_{serve.pid}_" in p.name]
        assert mine and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in mine)
        url = f"127.0.0.1:{ports[1]}"
        texts = [f"{TEXT} ({i}) " * 4 for i in range(32)]  # requests that take a while
        with Client(url) as client:
            expected = [list(r.scores.values()) for r in client.classify(texts, model=MODEL)]
        load = Load(url, texts, np.array(expected), clients=6)
        with load:
            time.sleep(2)
            terminated = time.monotonic()
            serve.send_signal(signal.SIGTERM)
            time.sleep(0.5)
        code = serve.wait(timeout=EXIT_TIMEOUT_SECS + 10)
        exited = time.monotonic() - terminated
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
        stale.unlink(missing_ok=True)
    # Requests in flight at the SIGTERM: each is served, or (sent a moment before it, reaching
    # the server after the drain began) refused at the ensemble's door, unloaded, which the SDK
    # raises as retryable. None fails half-way, as "scheduler ... stopped accepting" did.
    at_sigterm = [o for o in load.outcomes if o[0] < terminated < o[1]]
    served = [o for o in at_sigterm if o[2] == "ok"]
    refused = [o for o in at_sigterm if "has no available versions" in o[2]]
    print(f"SIGTERM: {len(served)} served, {len(refused)} refused, exit after {exited:.1f}s")
    assert code == 0 and exited <= EXIT_TIMEOUT_SECS
    assert served and len(served) + len(refused) == len(at_sigterm), at_sigterm
    assert not [p for p in SHM.glob("emotriton_*") if f"_{serve.pid}_" in p.name]


def malformed_text_request(url: str) -> str:
    """A gRPC request whose BYTES tensor says its text is 1000 bytes long and carries 5, as a
    client other than emoclient may send it; "ok", or the server's error."""
    channel = grpc.insecure_channel(url)
    try:
        request = service_pb2.ModelInferRequest(model_name=MODEL)
        request.inputs.add(name=TEXT_INPUT, datatype="BYTES", shape=[1, 1])
        request.raw_input_contents.append(struct.pack("<I", 1000) + b"short")
        service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
        return "ok"
    except grpc.RpcError as error:
        return f"{error.code().name}: {error.details()}"
    finally:
        channel.close()


def test_malformed_requests_fail_alone(toy_server: LocalServer) -> None:
    """Before: a BYTES length prefix pointing past its data failed 221 of 320 valid requests
    sent beside it. Now: 0."""
    url = toy_server.endpoints.grpc_url
    with (
        load_on(toy_server, [TEXT, "a second text"], clients=4) as load,
        ThreadPoolExecutor(4) as pool,
    ):
        refusals = list(pool.map(lambda _: malformed_text_request(url), range(40)))
    assert all(r.startswith("INVALID_ARGUMENT") for r in refusals), set(refusals)
    assert load.outcomes and load.failed() == []


def test_huge_texts_do_not_hold_up_small_requests(toy_server: LocalServer) -> None:
    """64 texts of 1 MiB (the largest the SDK sends) are tokenised only as far as max_length
    needs: small requests beside them keep a p99 under a second."""
    huge = ["I am so happy today, thank you all! " * 29_000] * 64  # 1,044,000 bytes each
    url = toy_server.endpoints.grpc_url
    with load_on(toy_server, [TEXT], clients=2) as small, Client(url, batch_size=8) as client:
        for _ in range(2):
            assert len(client.classify(huge, model=MODEL)) == 64
    latencies = sorted(end - start for start, end, _ in small.outcomes)
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    print(f"small requests beside 1 MiB texts: {len(latencies)}, p99 {p99 * 1000:.0f} ms")
    assert small.failed() == [] and p99 < 1.0


def test_overload_is_shed_at_once_as_retryable(toy_repository: Path, tmp_path: Path) -> None:
    """An encoder queue of at most 2 requests: of many concurrent requests the excess is
    refused at once with OverloadedError; those served are right. The encoder waits half a
    second for a full batch (8 requests of 8 texts, more than its queue holds), so requests
    wait in its queue whatever the machine's speed: the toy encoder, two instances of it,
    would otherwise take each request as it comes."""
    repository = shutil.copytree(toy_repository, tmp_path / "repository")
    path = repository / f"{MODEL}_encoder" / "config.pbtxt"
    config = text_format.Parse(path.read_text(), mc.ModelConfig())
    config.dynamic_batching.default_queue_policy.max_queue_size = 2
    config.dynamic_batching.max_queue_delay_microseconds = 500_000
    del config.dynamic_batching.preferred_batch_size[:]  # or a preferred batch skips the wait
    path.write_text(text_format.MessageToString(config))
    texts = [f"{TEXT} ({i}) " * 4 for i in range(8)]
    with LocalServer(repository, admin_key=KEY) as small_queue:
        once = RetryPolicy(attempts=1)

        def call(_: int) -> str:
            with Client(small_queue.endpoints.grpc_url, retry=once) as client:
                started = time.monotonic()
                try:
                    client.classify(texts, model=MODEL)
                    return "ok"
                except OverloadedError:
                    return f"shed after {time.monotonic() - started:.3f}s"

        with ThreadPoolExecutor(max_workers=24) as pool:
            outcomes = list(pool.map(call, range(96)))
    shed = [o for o in outcomes if o.startswith("shed")]
    print(f"overload: {outcomes.count('ok')} served, {len(shed)} shed")
    assert "ok" in outcomes and shed
    assert all(o == "ok" or o.startswith("shed") for o in outcomes)
