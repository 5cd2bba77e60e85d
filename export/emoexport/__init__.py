"""Hugging Face classifier → Triton ensemble (tokenizer → encoder → postprocess)."""
