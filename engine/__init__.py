"""evobox: an engine for LLM-driven discovery of code, where every candidate runs in a hardened sandbox."""

__version__ = "0.1.0"
