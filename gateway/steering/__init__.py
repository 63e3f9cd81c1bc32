"""Steering: the rules in force in this worker, and the pipeline's glue to `rules/`."""
