"""The front door's rules (emoserve.http_rules), one Triton 2.51 hazard or client mistake each:
refused with the documented status and a message that says what is wrong, or let through."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest

from emoserve.http_rules import (
    HEADER_LENGTH,
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    Refusal,
    blames_itself,
    check_body,
    check_headers,
    content_type_of,
    health_answer,
    inflated,
    is_health,
)

INFER = "/v2/models/go_emotions/infer"


def text_request(*texts: str, **extra: object) -> dict:
    shape = [len(texts), 1]
    return {"inputs": [{"name": "TEXT", "datatype": "BYTES", "shape": shape, "data": list(texts)}],
            **extra}  # fmt: skip


def refusal(call, *args) -> Refusal:
    with pytest.raises(Refusal) as refused:
        call(*args)
    return refused.value


@pytest.mark.parametrize(
    ("headers", "length", "status", "says"),
    [
        ({}, MAX_BODY_BYTES + 1, 413, "over the"),
        ({"Content-Encoding": "zstd"}, 10, 415, "'zstd' is not supported"),
        ({"Content-Encoding": "gzip, gzip"}, 10, 415, "not supported"),
        ({"Accept-Encoding": "gzip;q=1e999"}, 10, 400, "invalid q-value"),
        ({"Accept-Encoding": "gzip;q=2"}, 10, 400, "invalid q-value"),
        ({"Accept-Encoding": "deflate;q=0.5, gzip;q=-1"}, 10, 400, "gzip;q=-1"),
        ({HEADER_LENGTH: "abc"}, 10, 400, "must be a number of bytes, not 'abc'"),
        ({HEADER_LENGTH: "12abc"}, 10, 400, "must be a number"),
        ({HEADER_LENGTH: "-5"}, 10, 400, "must be a number"),
        ({HEADER_LENGTH: "99999999999999999999"}, 10, 400, "must be a number"),
    ],
)
def test_headers_that_crash_or_fool_triton_are_refused(headers, length, status, says) -> None:
    refused = refusal(check_headers, headers, length)
    assert refused.status == status and says in refused.message


def test_the_415_for_an_encoding_names_the_ones_accepted() -> None:
    refused = refusal(check_headers, {"Content-Encoding": "compress"}, 5)
    assert dict(refused.headers)["Accept-Encoding"] == "gzip, deflate"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Content-Encoding": "gzip", "Accept-Encoding": "gzip, deflate;q=0.5, *;q=0"},
        {"Content-Encoding": "Deflate", "Accept-Encoding": "br;q=1.000, identity;q=0.001"},
        {HEADER_LENGTH: "0"},
        {HEADER_LENGTH: "140"},
    ],
)
def test_well_formed_headers_pass(headers) -> None:
    check_headers(headers, 1000)


def test_a_form_label_on_json_is_relabelled_and_a_real_form_refused() -> None:
    """`curl -d @request.json` labels the body a form: it is JSON, and is served as JSON."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = json.dumps(text_request("hi")).encode()
    assert content_type_of(form, body) == "application/json"
    assert refusal(content_type_of, form, b"a=1&b=2").status == 415
    multipart = {"Content-Type": "multipart/form-data; boundary=x"}
    assert refusal(content_type_of, multipart, body).status == 415
    assert content_type_of({"Content-Type": "application/json"}, body) == "application/json"
    assert content_type_of({}, body) is None


def deep(levels: int) -> bytes:
    return b'{"inputs":' + b"[" * levels + b"]" * levels + b"}"


@pytest.mark.parametrize(
    ("path", "headers", "body", "says"),
    [
        (INFER, {}, b"", "empty request body"),
        (INFER, {}, b"{not json", "malformed JSON"),
        (INFER, {}, deep(200_000), f"maximum allowed ({MAX_JSON_DEPTH})"),
        ("/v2/repository/index", {}, deep(250_000), "nesting depth"),
        (INFER, {}, deep(MAX_JSON_DEPTH + 1), "nesting depth"),
        (INFER, {}, b"[1, 2, 3]", "must be a JSON object"),
        (INFER, {}, b"{}", "'inputs' must be a non-empty list"),
        (INFER, {}, json.dumps({"inputs": []}).encode(), "non-empty list"),
        (INFER, {HEADER_LENGTH: "999"}, b"{}", "beyond the 2-byte body"),
    ],
)
def test_bodies_that_crash_or_fool_triton_are_refused(path, headers, body, says) -> None:
    refused = refusal(check_body, "POST", path, headers, body)
    assert refused.status == 400 and says in refused.message


def request_with(**tensor: object) -> bytes:
    spec = {"name": "TEXT", "datatype": "BYTES", "shape": [1, 1], "data": ["hi"], **tensor}
    return json.dumps({"inputs": [{k: v for k, v in spec.items() if v is not None}]}).encode()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (request_with(data=[1, 2], shape=[2, 1]), "BYTES data holds 1"),
        (request_with(shape=[-1, 1]), "sizes >= 0"),
        (request_with(shape="1"), "sizes >= 0"),
        (request_with(shape=[3, 1]), "holds 3 elements, data has 1"),
        (request_with(datatype="TEXT"), "unknown datatype 'TEXT'"),
        (request_with(name=None), "needs a 'name'"),
        (request_with(data=None), "no 'data' and no binary_data_size"),
        (request_with(datatype="BOOL", data=[1]), "BOOL data holds 1"),
        (request_with(datatype="INT64", data=[True]), "INT64 data holds true"),
        (request_with(datatype="FP32", data=["1.5"]), 'FP32 data holds "1.5"'),
        (request_with(parameters={"binary_data_size": -1}), "'binary_data_size' must be"),
        (request_with(parameters={"binary_data_size": 2}), "'data' and binary_data_size"),
        (json.dumps({**text_request("a"), "parameters": {"priority": -1}}).encode(), "priority"),
        (json.dumps({**text_request("a"), "outputs": [{}]}).encode(), "outputs[0] needs"),
        (
            json.dumps(
                {
                    **text_request("a"),
                    "outputs": [{"name": "SCORES", "parameters": {"classification": "3"}}],
                }
            ).encode(),
            "'classification' must be a number",
        ),
    ],
)
def test_inference_requests_that_are_not_ones_are_refused(body: bytes, says: str) -> None:
    refused = refusal(check_body, "POST", INFER, {}, body)
    assert refused.status == 400 and says in refused.message


def test_the_binary_extension_must_account_for_every_byte() -> None:
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "TEXT",
                    "datatype": "BYTES",
                    "shape": [1, 1],
                    "parameters": {"binary_data_size": 6},
                }
            ]
        }
    ).encode()
    tensor = b"\x02\x00\x00\x00hi"
    lengths = {HEADER_LENGTH: str(len(header))}
    check_body("POST", INFER, lengths, header + tensor)
    short = refusal(check_body, "POST", INFER, lengths, header + tensor[:-1])
    assert "declare 6 bytes of binary data, the body carries 5" in short.message


@pytest.mark.parametrize(
    ("method", "path", "headers", "body"),
    [
        ("POST", INFER, {}, json.dumps(text_request("hi", "there")).encode()),
        ("POST", INFER, {HEADER_LENGTH: "0"}, b"\x02\x00\x00\x00hi"),  # Triton's raw request
        ("POST", "/v2/repository/index", {}, b"{}"),
        ("GET", "/v2/health/ready", {}, b""),
        ("GET", "/metrics", {}, b"anything"),
        ("POST", INFER, {}, request_with(data=[["hi"]])),  # nested data, flattened
        ("POST", INFER, {}, request_with(datatype="FP32", data=[1], shape=[1])),
    ],
)
def test_valid_requests_pass(method: str, path: str, headers: dict, body: bytes) -> None:
    check_body(method, path, headers, body)


def test_health_answers_get_the_kserve_body() -> None:
    assert is_health("GET", "/v2/health/ready") == "ready"
    assert is_health("GET", "/v2/health/live") == "live"
    assert is_health("POST", "/v2/health/ready") is None
    assert is_health("GET", "/v2/models/x/ready") is None
    assert health_answer("ready", 200) == {"ready": True}
    assert health_answer("live", 400) == {"live": False}


def test_only_tritons_json_faults_are_the_callers() -> None:
    fault = json.dumps({"error": "attempt to access JSON non-string as string"}).encode()
    assert blames_itself(500, fault)
    parse = json.dumps({"error": "failed to parse the request JSON buffer: x"}).encode()
    assert blames_itself(500, parse)
    assert not blames_itself(500, json.dumps({"error": "Stub process is not healthy"}).encode())
    assert not blames_itself(400, parse)
    assert not blames_itself(500, b"not json")


BODY = json.dumps(text_request("one", "two", "three")).encode()


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("encoding", "packed"),
    [
        ("gzip", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),
        ("deflate", raw_deflate(BODY)),  # what some clients send for deflate
        ("identity", BODY),
    ],
)
def test_compressed_bodies_are_inflated(encoding: str, packed: bytes) -> None:
    assert inflated({"Content-Encoding": encoding}, packed) == BODY


@pytest.mark.parametrize(
    ("encoding", "packed", "status", "says"),
    [
        ("gzip", BODY, 400, "not valid gzip data"),  # JSON labelled gzip: Triton ran it empty
        ("gzip", gzip.compress(BODY)[:-8], 400, "not one complete gzip stream"),
        ("gzip", gzip.compress(BODY) + gzip.compress(BODY), 400, "not one complete"),
        ("gzip", gzip.compress(b" " * (MAX_BODY_BYTES + 1)), 413, "inflates to over"),
    ],
)
def test_bodies_that_do_not_inflate_are_refused(encoding, packed, status, says) -> None:
    refused = refusal(inflated, {"Content-Encoding": encoding}, packed)
    assert refused.status == status and says in refused.message
