"""TLS and mutual TLS on gRPC: the launcher serves it, both SDK clients speak it."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from emoclient import AsyncClient, Client, RetryPolicy, ServerUnavailableError
from emoserve import GrpcTls, LocalServer

ONCE = RetryPolicy(attempts=1)


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA, a server certificate for 127.0.0.1, and a client certificate."""
    directory = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "1", "-subj", "/CN=emotriton test CA", cwd=directory)  # fmt: skip
    for name, usage in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
                        ("client", "extendedKeyUsage=clientAuth")):  # fmt: skip
        (directory / f"{name}.ext").write_text(usage + "\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=directory)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "1",
                "-extfile", f"{name}.ext", cwd=directory)  # fmt: skip
    return directory


@pytest.fixture(scope="module")
def small_repository(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    small = tmp_path_factory.mktemp("tls-repository")
    for part in ("", "_tokenizer", "_encoder", "_postprocess"):
        shutil.copytree(repository / f"emotion{part}", small / f"emotion{part}")
    return small


def classify_async(url: str, **options) -> list:
    async def run():
        async with AsyncClient(url, retry=ONCE, **options) as client:
            return await client.classify(["hello", "bye"], model="emotion")

    return asyncio.run(run())


def test_grpc_over_tls(pki: Path, small_repository: Path) -> None:
    tls = GrpcTls(pki / "server.pem", pki / "server.key")
    with LocalServer(small_repository, grpc_tls=tls) as server:
        url = server.endpoints.grpc_url
        trusted = {"ssl": True, "root_certificates": str(pki / "ca.pem")}
        with Client(url, retry=ONCE, **trusted) as client:
            assert len(client.classify(["hello", "bye"], model="emotion")) == 2
        assert len(classify_async(url, **trusted)) == 2
        with Client(url, retry=ONCE) as plaintext, pytest.raises(ServerUnavailableError):
            plaintext.classify("hello", model="emotion")


def test_grpc_over_mutual_tls(pki: Path, small_repository: Path) -> None:
    tls = GrpcTls(pki / "server.pem", pki / "server.key", client_ca=pki / "ca.pem")
    with LocalServer(small_repository, grpc_tls=tls) as server:
        url = server.endpoints.grpc_url
        trusted = {"ssl": True, "root_certificates": str(pki / "ca.pem")}
        identity = {
            "private_key": str(pki / "client.key"),
            "certificate_chain": str(pki / "client.pem"),
        }
        with Client(url, retry=ONCE, **trusted, **identity) as client:
            assert client.classify("hello", model="emotion")[0].labels
        assert len(classify_async(url, **trusted, **identity)) == 2
        with Client(url, retry=ONCE, **trusted) as anonymous, pytest.raises(ServerUnavailableError):
            anonymous.classify("hello", model="emotion")
