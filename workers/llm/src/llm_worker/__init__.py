"""llm_worker: a PM Agent worker whose craft is a language model with workspace tools.

Built on `pm_worker` like every worker; `execute` runs an agent loop (`AgentLoop`) over
an Anthropic Messages or OpenAI-compatible chat-completions endpoint (`LLM_PROVIDER`).
"""

from llm_worker.agent import AgentLoop
from llm_worker.backends import ModelBackend, ModelError, RetryableModelError, StartupError, make_backend
from llm_worker.settings import LLMSettings, load_llm_settings
from llm_worker.toolbox import Toolbox
from llm_worker.tools import MODEL_TOOLS
from llm_worker.worker import LLMWorker, main
from llm_worker.workspace_files import safe_path

__all__ = [
    "MODEL_TOOLS",
    "AgentLoop",
    "LLMSettings",
    "LLMWorker",
    "ModelBackend",
    "ModelError",
    "RetryableModelError",
    "StartupError",
    "Toolbox",
    "load_llm_settings",
    "main",
    "make_backend",
    "safe_path",
]
