"""Sources of the Triton Python models that export copies into a repository as `1/model.py`.

They run inside Triton's Python backend (the NGC image's Python, 3.10) with numpy and tokenizers
only, take every name they need from their own config, and import cleanly outside Triton so
that the export parity gate and the unit tests run the same code the server runs.
"""
