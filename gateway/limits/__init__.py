"""Limits: admission of a steered request through budgets and rate limits."""
