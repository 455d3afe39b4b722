"""Read-only tools for the LLM's investigation (registry.py: tools as data; builtin.py: the tools)."""
