"""A stand-in for Triton's `triton_python_backend_utils`, for unit tests of the Python models.

It models only what those models use: reading a named input, and building tensors, responses
and errors. The end-to-end tests run the same models inside the real server.
"""

from __future__ import annotations

import numpy as np


class Tensor:
    def __init__(self, name: str, array: np.ndarray) -> None:
        self._name, self._array = name, array

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        return self._array


class TritonError:
    INVALID_ARG = 3
    INTERNAL = 13

    def __init__(self, message: str, code: int = 0) -> None:
        self._message, self.code = message, code

    def message(self) -> str:
        return self._message


class InferenceResponse:
    def __init__(
        self, output_tensors: list[Tensor] | None = None, error: TritonError | None = None
    ) -> None:
        self.tensors = {t.name(): t.as_numpy() for t in output_tensors or []}
        self.error = error


class InferenceRequest:
    def __init__(self, **inputs: np.ndarray) -> None:
        self.inputs = {name: Tensor(name, array) for name, array in inputs.items()}


def get_input_tensor_by_name(request: InferenceRequest, name: str) -> Tensor | None:
    return request.inputs.get(name)
