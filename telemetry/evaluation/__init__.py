"""Quality: evaluators pick recorded interactions, a pool of workers asks a judge model to score
them, and the verdicts are stored in `evaluations` (see docs/quality.md)."""
