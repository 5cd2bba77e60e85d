"""Why an export was refused. Nothing is written to the repository when one is raised."""

from emoclient.errors import EmotritonError


class ExportError(EmotritonError):
    """The export was refused."""


class SourceError(ExportError):
    """The model or its tokenizer cannot be exported as it is."""


class LabelSchemeError(ExportError):
    """The labels, thresholds or decision rule asked for do not fit together."""


class ParityError(ExportError):
    """The exported pipeline does not reproduce the PyTorch model."""
