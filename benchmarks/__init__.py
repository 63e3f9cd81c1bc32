"""Load harness: Steerway side by side with the mock provider (the floor), LiteLLM and Portkey.

Run `python -m benchmarks --help`; `benchmarks/README.md` explains the scenarios and the tables.
"""
