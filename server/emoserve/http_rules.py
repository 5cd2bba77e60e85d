"""The rules of the HTTP front door: what reaches Triton 2.51's HTTP servers, and what they answer.

Triton 2.51's HTTP front end (libevhtp) is crashed, fooled or made to blame itself by requests
that any client can send (docs/reliability.md lists each, with the release that fixed it):

- a form-urlencoded body of a few MiB: libevhtp parses it on the stack (SIGSEGV);
- JSON nested a few hundred thousand deep (~300 KB): its JSON parser recurses (stack overflow);
- `Accept-Encoding: gzip;q=1e999`: an uncaught std::out_of_range (SIGABRT);
- a body labelled gzip or deflate that does not inflate, or `Inference-Header-Content-Length:
  abc`, or no body at all: answered 200, as the inference of an empty or a garbled text;
- compressed bodies are inflated without a bound;
- malformed JSON or a wrongly typed field: 500, as if the server were at fault.

So each request is checked here, before Triton reads a byte, and what Triton gets is plain: the
body inflated (the bound is the body limit), a form content type that holds JSON relabelled as
JSON, and nothing it would misread. These functions are pure, so every rule is tested without a
server; emoserve.http_guard applies them.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# The largest request a client needs: 64 texts (the max batch) of at most 1 MiB each, and the
# KServe framing around them; the inflated size of a compressed body counts.
MAX_BODY_BYTES = 72 * 2**20
# Triton's own limit since 2.58 (HTTP_MAX_JSON_NESTING_DEPTH): an inference request needs 5.
MAX_JSON_DEPTH = 100
# Content codings the guard inflates, and forwards as identity: Triton's own.
DECODED_ENCODINGS = ("gzip", "deflate")
# The content types whose bodies libevhtp parses as a form, compared as case-insensitive
# prefixes so that parameters (charset, boundary) make no difference.
URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/"
JSON_TYPE = "application/json"
# Triton's binary tensor extension: the length of the JSON part of the body.
HEADER_LENGTH = "Inference-Header-Content-Length"
# RFC 9110 12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
_QVALUE = re.compile(r"^(0(\.\d{0,3})?|1(\.0{0,3})?)$")
_INFER_PATH = re.compile(r"^/v2/models/[^/]+(/versions/[^/]+)?/infer$")
_HEALTH_PATH = re.compile(r"^/v2/health/(ready|live)$")
_DATATYPES = {
    "BOOL": (bool,),
    "BYTES": (str,),
    **{f"{kind}{bits}": (int,) for kind in ("INT", "UINT") for bits in (8, 16, 32, 64)},
    **{name: (int, float) for name in ("FP16", "FP32", "FP64", "BF16")},
}
# TritonJson errors that Triton's HTTP front end answers 500 (its TRITONJSON_STATUSRETURN makes
# every one INTERNAL): they are the request's fault.
_JSON_FAULTS = ("failed to parse the request json", "attempt to access json", "unable to parse")


@dataclass(frozen=True)
class Refusal(Exception):
    """A request the guard answers itself: `status`, and what is wrong in Triton's error shape."""

    status: int
    message: str
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False  # the body was not read to its end: the connection cannot go on


def check_headers(headers: Mapping[str, str], content_length: int | None) -> None:
    """Refusal for a request whose headers alone condemn it (nginx's order: the size first)."""
    if content_length is not None and content_length > MAX_BODY_BYTES:
        raise Refusal(
            413, f"request body of {content_length} bytes is over the {MAX_BODY_BYTES}-byte limit"
        )
    encoding = headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", *DECODED_ENCODINGS):
        raise Refusal(
            415,
            f"Content-Encoding {encoding!r} is not supported: send gzip, deflate or none",
            (("Accept-Encoding", ", ".join(DECODED_ENCODINGS)),),
        )
    for coding in headers.get("Accept-Encoding", "").split(","):
        _, _, parameters = coding.partition(";")
        for parameter in filter(None, (p.strip() for p in parameters.split(";"))):
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q" and not _QVALUE.match(value.strip()):
                raise Refusal(400, f"Accept-Encoding: {coding.strip()!r} has an invalid q-value")
    length = headers.get(HEADER_LENGTH)
    if length is not None and not (length.isascii() and length.isdigit() and len(length) <= 10):
        raise Refusal(400, f"{HEADER_LENGTH} must be a number of bytes, not {length!r}")


def inflated(headers: Mapping[str, str], body: bytes) -> bytes:
    """The body as sent before its Content-Encoding, within MAX_BODY_BYTES: a zlib stream or
    raw deflate data for deflate (clients send both), one member for gzip."""
    encoding = headers.get("Content-Encoding", "identity").strip().lower()
    if encoding == "identity" or not body:
        return body
    zlib_header = body[0] & 0x0F == 8
    wbits = (
        16 + zlib.MAX_WBITS if encoding == "gzip" else (1 if zlib_header else -1) * zlib.MAX_WBITS
    )
    inflater = zlib.decompressobj(wbits)
    try:
        plain = inflater.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error as failure:
        raise Refusal(400, f"the body is not valid {encoding} data: {failure}") from None
    if len(plain) > MAX_BODY_BYTES or inflater.unconsumed_tail:
        raise Refusal(413, f"the body inflates to over the {MAX_BODY_BYTES}-byte limit")
    if not inflater.eof or inflater.unused_data:
        raise Refusal(400, f"the body is not one complete {encoding} stream")
    return plain


def content_type_of(headers: Mapping[str, str], body: bytes) -> str | None:
    """The Content-Type to forward: the client's, or JSON for a form-labelled body that is
    JSON (`curl -d` labels everything a form); Refusal for a real form."""
    content_type = headers.get("Content-Type")
    if content_type is None:
        return None
    kind = content_type.strip().lower()
    if kind.startswith(URLENCODED) and _is_json(body):
        return JSON_TYPE
    if kind.startswith((URLENCODED, MULTIPART)):
        raise Refusal(
            415,
            f"{content_type.split(';')[0].strip()} bodies are refused (Triton's HTTP front end "
            "crashes on large ones): send JSON, as application/json",
        )
    return content_type


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return False
    return True


def check_body(method: str, path: str, headers: Mapping[str, str], body: bytes) -> None:
    """Refusal for a body Triton would crash on, misread, or blame itself for: JSON too deep
    or malformed anywhere under /v2, and an inference request that is not one."""
    if method != "POST" or not path.startswith("/v2/"):
        return
    declared = headers.get(HEADER_LENGTH)
    json_length = len(body) if declared is None else int(declared)
    if json_length > len(body):
        raise Refusal(
            400, f"{HEADER_LENGTH} is {json_length} bytes, beyond the {len(body)}-byte body"
        )
    infer = bool(_INFER_PATH.match(path))
    if infer and not body:
        raise Refusal(400, "empty request body: send a KServe v2 inference request as JSON")
    if json_length == 0:
        return  # Triton's raw binary request: the whole body is the one input's data
    document = _parse(body[:json_length])
    if infer:
        check_inference_request(document, binary_bytes=len(body) - json_length)


def _parse(text: bytes) -> Any:
    try:
        document = json.loads(text)
    except RecursionError:
        document = None
        depth = MAX_JSON_DEPTH + 1
    except ValueError as error:
        raise Refusal(400, f"malformed JSON: {error}") from None
    else:
        depth = _depth(document)
    if depth > MAX_JSON_DEPTH:
        raise Refusal(400, f"JSON nesting depth exceeds the maximum allowed ({MAX_JSON_DEPTH})")
    return document


def _depth(document: Any) -> int:
    """How deep lists and objects nest, without recursing."""
    deepest, pending = 0, [(document, 1)]
    while pending:
        value, level = pending.pop()
        if isinstance(value, dict):
            values: Iterable[Any] = value.values()
        elif isinstance(value, list):
            values = value
        else:
            continue
        deepest = max(deepest, level)
        if level > MAX_JSON_DEPTH:
            return level
        pending.extend((item, level + 1) for item in values)
    return deepest


def check_inference_request(document: Any, binary_bytes: int) -> None:
    """The KServe v2 inference request schema, with Triton's binary tensor extension."""
    request = _object(document, "the request")
    _parameters(request.get("parameters"), "request", {"priority": int, "timeout": int})
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise Refusal(400, "'inputs' must be a non-empty list of tensors")
    declared_binary = sum(_input(tensor, i) for i, tensor in enumerate(inputs))
    if declared_binary != binary_bytes:
        raise Refusal(
            400,
            f"the inputs declare {declared_binary} bytes of binary data, the body carries "
            f"{binary_bytes} after the JSON",
        )
    outputs = request.get("outputs", [])
    if not isinstance(outputs, list):
        raise Refusal(400, "'outputs' must be a list")
    for i, output in enumerate(outputs):
        tensor = _object(output, f"outputs[{i}]")
        if not isinstance(tensor.get("name"), str):
            raise Refusal(400, f"outputs[{i}] needs a 'name' string")
        _parameters(
            tensor.get("parameters"), f"outputs[{i}]", {"classification": int, "binary_data": bool}
        )


def _input(document: Any, index: int) -> int:
    """Check input `index`; the bytes of binary data it declares."""
    where = f"inputs[{index}]"
    tensor = _object(document, where)
    name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
    if not isinstance(name, str):
        raise Refusal(400, f"{where} needs a 'name' string")
    if datatype not in _DATATYPES:
        raise Refusal(400, f"{where} ({name}): unknown datatype {datatype!r}")
    if not isinstance(shape, list) or not all(_natural(d) for d in shape):
        raise Refusal(400, f"{where} ({name}): 'shape' must be a list of sizes >= 0")
    parameters = _parameters(tensor.get("parameters"), where, {"binary_data_size": int})
    if "binary_data_size" in parameters:
        if "data" in tensor:
            raise Refusal(400, f"{where} ({name}): 'data' and binary_data_size both given")
        size: int = parameters["binary_data_size"]
        return size
    if "data" not in tensor:
        raise Refusal(400, f"{where} ({name}): no 'data' and no binary_data_size")
    elements = _flattened(tensor["data"])
    wanted = _DATATYPES[datatype]
    for element in elements:
        is_bool = isinstance(element, bool)
        if not isinstance(element, wanted) or (is_bool and bool not in wanted):
            raise Refusal(
                400, f"{where} ({name}): {datatype} data holds {json.dumps(element)[:40]}"
            )
    if len(elements) != math.prod(shape):
        raise Refusal(
            400, f"{where} ({name}): shape {shape} holds {math.prod(shape)} elements, data has "
            f"{len(elements)}",
        )  # fmt: skip
    return 0


def _natural(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _object(document: Any, what: str) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise Refusal(400, f"{what} must be a JSON object")
    return document


def _parameters(document: Any, where: str, typed: Mapping[str, type]) -> dict[str, Any]:
    """An object of parameters, the ones in `typed` of their type (int ones >= 0)."""
    if document is None:
        return {}
    parameters = _object(document, f"{where} 'parameters'")
    for key, kind in typed.items():
        if key not in parameters:
            continue
        value = parameters[key]
        valid = _natural(value) if kind is int else isinstance(value, kind)
        if not valid:
            wanted = "a number >= 0" if kind is int else "true or false"
            raise Refusal(400, f"{where} parameter {key!r} must be {wanted}, not {value!r}")
    return parameters


def _flattened(data: Any) -> list[Any]:
    """The elements of nested lists, in order, without recursing (the depth is bounded)."""
    if not isinstance(data, list):
        return [data]
    elements: list[Any] = []
    pending = [iter(data)]
    while pending:
        item = next(pending[-1], _END)
        if item is _END:
            pending.pop()
        elif isinstance(item, list):
            pending.append(iter(item))
        else:
            elements.append(item)
    return elements


_END = object()


def is_health(method: str, path: str) -> str | None:
    """'ready' or 'live' for the server health endpoints, whose body the guard writes."""
    match = _HEALTH_PATH.match(path)
    return match[1] if match and method in ("GET", "HEAD") else None


def health_answer(kind: str, status: int) -> dict[str, bool]:
    """KServe v2's body for Triton's bodiless health answer: 200 is true, anything else false."""
    return {kind: status == 200}


def blames_itself(status: int, body: bytes) -> bool:
    """A 500 of Triton's that is a TritonJson parse or type error: the request's fault."""
    if status != 500:
        return False
    try:
        message = str(json.loads(body).get("error", ""))
    except (ValueError, AttributeError):
        return False
    return message.lower().startswith(_JSON_FAULTS)
