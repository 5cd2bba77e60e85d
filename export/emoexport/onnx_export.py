"""PyTorch → ONNX with dynamic batch and sequence axes, through torch.export."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

from .source import LogitsSelector, select_logits

OPSET = 18

# torch.onnx warns on every export that torchvision's operators are not registered; we use none.
logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)


class EncoderInputs(torch.nn.Module):
    """A wrapped model that takes the tokenizer's tensors by name, as ONNX inputs, and returns
    one tensor; subclasses say how to call the model and which output to keep."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        inputs = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
        }
        return self.run({name: tensor for name, tensor in inputs.items() if tensor is not None})

    def run(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError


class LogitsModel(EncoderInputs):
    """A classifier whose only output is its logits."""

    def __init__(self, model: torch.nn.Module, logits: LogitsSelector = "logits") -> None:
        super().__init__(model)
        self.logits = logits

    def run(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return select_logits(self.model(**inputs), self.logits)


def export_onnx(
    module: torch.nn.Module, sample: dict[str, torch.Tensor], path: Path, output_name: str
) -> Path:
    """Write `module` (named tensor inputs, one tensor output) as ONNX. `sample` must have a
    batch of at least 2 and differing lengths, or torch.export specialises the axes it sees as 1.
    """
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            (),
            str(path),
            kwargs=sample,
            input_names=list(sample),
            output_names=[output_name],
            dynamic_shapes={name: {0: batch, 1: sequence} for name in sample},
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    return path
