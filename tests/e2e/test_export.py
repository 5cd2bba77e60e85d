"""Export: the repository layout, the parity gate, and refusals that write nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from emoclient import protocol
from emoexport import exporter
from emoexport.errors import ExportError, ParityError, SourceError
from emoexport.exporter import ExportOptions, export_classifier
from emoexport.source import code_identity


def test_export_writes_four_models_in_triton_layout(exported) -> None:
    tokenizer, encoder, postprocess, ensemble = exported.models
    assert [m.name for m in exported.models] == [
        "go_tokenizer",
        "go_encoder",
        "go_postprocess",
        "go",
    ]
    assert sorted(p.name for p in (tokenizer / "1").iterdir()) == ["model.py", "tokenizer.json"]
    assert sorted(p.name for p in (encoder / "1").iterdir()) == ["model.onnx"]
    assert sorted(p.name for p in (postprocess / "1").iterdir()) == ["model.py"]
    assert list((ensemble / "1").iterdir()) == []  # an ensemble's version folder is empty
    assert all((m / "config.pbtxt").is_file() for m in exported.models)
    assert not list(ensemble.parent.glob(".staging-*"))


def test_parity_gate_passes_on_texts_beyond_max_length(exported) -> None:
    assert exported.parity.max_abs_diff <= 1e-4
    assert exported.parity.truncated_texts >= 1
    assert exported.max_length == 64


def test_parity_gate_refuses_a_graph_that_differs_from_pytorch(
    served_models, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_export = exporter.export_onnx

    def export_perturbed(module, sample, path, output_name):
        with torch.no_grad():
            for parameter in module.model.parameters():
                parameter.add_(1e-2 * torch.randn_like(parameter))
        try:
            return real_export(module, sample, path, output_name)
        finally:
            module.model.load_state_dict(original)

    source = served_models["emotion"].directory
    from transformers import AutoModelForSequenceClassification

    original = AutoModelForSequenceClassification.from_pretrained(source).state_dict()
    monkeypatch.setattr(exporter, "export_onnx", export_perturbed)
    with pytest.raises(ParityError, match="refusing to export"):
        export_classifier(str(source), ExportOptions(name="drift", repository=tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_every_part_of_an_earlier_export(served_models, tmp_path: Path) -> None:
    served_models["toy_embedding"].export("m", tmp_path)
    assert (tmp_path / "m_head").is_dir()
    export_classifier(
        str(served_models["emotion"].directory),
        ExportOptions(name="m", repository=tmp_path, overwrite=True),
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "m",
        "m_encoder",
        "m_postprocess",
        "m_tokenizer",
    ]


def test_existing_export_needs_overwrite(served_models, tmp_path: Path) -> None:
    source = str(served_models["emotion"].directory)
    export_classifier(source, ExportOptions(name="m", repository=tmp_path))
    with pytest.raises(ExportError, match="--overwrite"):
        export_classifier(source, ExportOptions(name="m", repository=tmp_path))
    result = export_classifier(
        source, ExportOptions(name="m", repository=tmp_path, max_length=16, overwrite=True)
    )
    assert result.max_length == 16
    assert 'string_value: "16"' in (tmp_path / "m_tokenizer" / "config.pbtxt").read_text()


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"name": "bad name!"}, ExportError, "model name"),
        ({"name": "ok", "max_length": 10_000}, SourceError, "outside 2..64"),
    ],
)
def test_bad_options_are_refused(served_models, tmp_path: Path, options, error, match) -> None:
    with pytest.raises(error, match=match):
        export_classifier(
            str(served_models["emotion"].directory), ExportOptions(repository=tmp_path, **options)
        )
    assert not any(tmp_path.iterdir())


def test_a_directory_without_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="from the directory"):
        export_classifier(str(tmp_path), ExportOptions(name="x", repository=tmp_path / "repo"))


def test_pickled_weights_are_refused_unless_allowed(served_models, tmp_path: Path) -> None:
    """A model whose weights are only a pickle (pytorch_model.bin) could run code as it loads:
    export refuses it, writing nothing, unless told the model is trusted."""
    source = served_models["emotion"].directory
    pickled = tmp_path / "pickled"
    shutil.copytree(source, pickled)
    (pickled / "model.safetensors").unlink()
    state = AutoModelForSequenceClassification.from_pretrained(source).state_dict()
    torch.save(state, pickled / "pytorch_model.bin")
    refused = tmp_path / "refused"
    with pytest.raises(SourceError, match=r"only as a pickle .*--allow-pickle"):
        export_classifier(str(pickled), ExportOptions(name="p", repository=refused))
    assert not refused.exists() or not any(refused.iterdir())
    allowed = ExportOptions(name="p", repository=tmp_path / "allowed", allow_pickle=True)
    assert export_classifier(str(pickled), allowed).parity.max_abs_diff <= 1e-4


def test_a_models_own_code_is_named_in_the_served_config(served_models, tmp_path: Path) -> None:
    """Which code ran at export is known afterwards: a directory's is the sha256 of its Python
    files; a hub model's must be a commit, not a branch that can move."""
    source = served_models["semeval"].directory
    options = ExportOptions(name="s", repository=tmp_path, trust_remote_code=True)
    export_classifier(str(source), options)
    config = (tmp_path / "s" / "config.pbtxt").read_text()
    digest = code_identity(str(source), None)
    assert digest.startswith("sha256:") and f'"{protocol.PARAM_OWN_CODE}"' in config
    assert digest in config
    with pytest.raises(SourceError, match="--revision COMMIT"):
        code_identity("someone/their-model", "main")
    assert code_identity("someone/their-model", "a" * 40) == "someone/their-model@" + "a" * 40


def test_a_reexport_goes_in_at_the_next_version(tmp_path: Path) -> None:
    from emoexport.exporter import next_version

    assert next_version(tmp_path, "go") == 1
    (tmp_path / "go" / "1").mkdir(parents=True)
    (tmp_path / "go" / "config.pbtxt").touch()
    assert next_version(tmp_path, "go") == 2
    (tmp_path / "go" / "7").mkdir()
    assert next_version(tmp_path, "go") == 8
