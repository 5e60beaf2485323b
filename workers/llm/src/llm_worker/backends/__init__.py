"""The model providers, one module each, behind one `ModelBackend` protocol.

- `base`: `ModelBackend`, what the agent loop calls;
- `errors`: the errors every provider raises (and `retry-after` parsing);
- `http`: the HTTP client both use, which reads an answer up to LLM_MAX_RESPONSE_BYTES;
- `anthropic`: `AnthropicBackend`, the Messages API (`tool_use` blocks);
- `openai`: `OpenAIBackend`, OpenAI-compatible chat completions (Ollama, vLLM, ...);
- `factory`: `make_backend(settings)`, the one `LLM_PROVIDER` names.

Imports run one way: providers → errors, http; factory → providers; nothing back.
"""

from llm_worker.backends.base import ModelBackend
from llm_worker.backends.errors import (
    EndpointUnreachable,
    ModelError,
    RetryableModelError,
    StartupError,
)
from llm_worker.backends.factory import make_backend

__all__ = [
    "EndpointUnreachable",
    "ModelBackend",
    "ModelError",
    "RetryableModelError",
    "StartupError",
    "make_backend",
]
