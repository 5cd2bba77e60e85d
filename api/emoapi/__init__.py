"""The HTTP JSON API: plain JSON routes in front of Triton's gRPC, for callers that do not speak
tensors. Our own `/classify`, the Hugging Face text-classification task (what
`huggingface_hub.InferenceClient.text_classification` sends), text-embeddings-inference's
`/predict`, the served models and health; OpenAPI at /openapi.json and its page at /docs.
"""

from .app import create_app
from .settings import ApiSettings

__all__ = ["ApiSettings", "create_app"]
