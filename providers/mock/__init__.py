"""The mock provider: a real HTTP server speaking OpenAI's wire format, for tests, offline runs
and benchmarks. The public entry points live in `providers.mock_server`.
"""
