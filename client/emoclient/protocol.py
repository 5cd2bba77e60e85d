"""The contract between an exported ensemble and its clients.

Export writes these names into every ensemble it builds, and the SDK reads them, so the two
cannot drift. The label metadata travels as parameters of the ensemble's config: a client learns
the label names, activation and thresholds from the server, not from the caller.
"""

TEXT_INPUT = "TEXT"
SCORES_OUTPUT = "SCORES"
PREDICTED_OUTPUT = "PREDICTED"

# Parameters of the ensemble's config (string values; lists are JSON).
PARAM_KIND = "emotriton"  # marks an ensemble built by emotriton export; value: contract version
PARAM_LABELS = "labels"
PARAM_ACTIVATION = "activation"
PARAM_DECISION = "decision"
PARAM_THRESHOLDS = "thresholds"
PARAM_THRESHOLD_PROFILE = "threshold_profile"
PARAM_MAX_LENGTH = "max_length"
# Texts per request of a bulk call: what the encoder batches at most when requests queue, so
# that no request waits behind a long batch (absent in older exports: the max batch size).
PARAM_BULK_BATCH_SIZE = "bulk_batch_size"
# Set when the exported model ran its own code: a hub commit, or sha256 of a directory's .py files.
PARAM_OWN_CODE = "own_code"

CONTRACT_VERSION = "1"

# Request priorities, as the encoder's dynamic batcher orders them (1 is served first): what a
# person waits for, and what a job of many texts does. The request parameter is Triton's own.
PRIORITY_INTERACTIVE = 1
PRIORITY_BULK = 2

# The longest text, in UTF-8 bytes, that the SDK sends and the tokenizer model accepts: far
# beyond any model's max_length tokens, and short enough that tokenising it never holds up the
# requests queued behind it. The served limit is the tokenizer config's `max_text_bytes`.
MAX_TEXT_BYTES = 1 << 20

# Triton's administrative APIs (the model repository index among them) answer only requests
# that carry this header with the operator's key (emoserve.admin locks them). Over gRPC, Triton
# reads a restricted protocol's header under this prefix.
ADMIN_HEADER = "emotriton-admin-key"
GRPC_RESTRICTED_HEADER_PREFIX = "triton-grpc-protocol-"
