"""Guardrails: the checks, and running them over the input and the answer."""
