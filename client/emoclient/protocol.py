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
# Set when the exported model ran its own code: a hub commit, or sha256 of a directory's .py files.
PARAM_OWN_CODE = "own_code"

CONTRACT_VERSION = "1"

# The longest text, in UTF-8 bytes, that the SDK sends and the tokenizer model accepts: far
# beyond any model's max_length tokens, and short enough that tokenising it never holds up the
# requests queued behind it. The served limit is the tokenizer config's `max_text_bytes`.
MAX_TEXT_BYTES = 1 << 20

# Triton's administrative APIs (the model repository index among them) answer only requests
# that carry this header with the operator's key (emoserve.admin locks them). Over gRPC, Triton
# reads a restricted protocol's header under this prefix.
ADMIN_HEADER = "emotriton-admin-key"
GRPC_RESTRICTED_HEADER_PREFIX = "triton-grpc-protocol-"
