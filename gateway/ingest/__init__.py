"""`POST /v1/traces`: OTLP/HTTP trace ingest."""
