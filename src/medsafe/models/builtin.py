"""Importing this module registers every built-in backend."""

from medsafe.models import embedded, hf_local, openai_compat, replay, vllm_local  # noqa: F401
