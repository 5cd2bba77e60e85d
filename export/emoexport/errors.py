"""Why an export was refused. Nothing is written to the repository when one is raised."""


class ExportError(RuntimeError):
    """The export was refused."""


class SourceError(ExportError):
    """The model or its tokenizer cannot be exported as it is."""


class ParityError(ExportError):
    """The exported pipeline does not reproduce the PyTorch model."""
