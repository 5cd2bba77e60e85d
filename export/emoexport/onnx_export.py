"""PyTorch → ONNX with dynamic batch and sequence axes, through torch.export."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

OPSET = 18

# torch.onnx warns on every export that torchvision's operators are not registered; we use none.
logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)


def logits_of(output: object) -> torch.Tensor:
    """The logits of a forward pass: the `logits` field of a transformers ModelOutput."""
    logits = getattr(output, "logits", None)
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"the model returned {type(output).__name__}, which has no logits tensor")
    return logits


class LogitsModel(torch.nn.Module):
    """The classifier with named tensor inputs and the logits as its only output."""

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
        return logits_of(self.model(**{k: v for k, v in inputs.items() if v is not None}))


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
