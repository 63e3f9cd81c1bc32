"""What each insight says besides its rows: why it is empty and what would fill it, what it
left out. The console page, the API and the report section give the same sentences."""

from __future__ import annotations

from telemetry.insights.cheaper_models import CheaperModels
from telemetry.insights.errors import Errors
from telemetry.insights.max_tokens import MaxTokens
from telemetry.insights.repeats import Repeats


def cheaper_model_notes(found: CheaperModels) -> list[str]:
    notes = list(found.notes)
    if found.workloads and not found.suggestions:
        notes.append(
            "No cheaper model is of equal quality yet on this evidence: see each workload's "
            f"comparisons (a model needs {found.min_samples} scores; equal means the 95 % "
            f"interval of the score difference stays above -{found.margin:g} points)."
        )
    return notes


def repeat_notes(found: Repeats) -> list[str]:
    notes = []
    if not found.groups:
        notes.append(
            "No identical request was paid for twice in this range. Repeats are found from "
            "stored prompts: with telemetry.store_content set to none nothing can be compared."
        )
    if found.skipped:
        notes.append(
            f"{found.skipped:,} uncached calls had no stored prompt (content storage off or "
            "not kept for them) and were not compared."
        )
    if found.more_groups:
        notes.append(f"{found.more_groups:,} smaller groups of repeats are not listed.")
    return notes


def max_tokens_notes(found: MaxTokens) -> list[str]:
    notes = []
    if not found.groups:
        notes.append(
            f"No model and key had {found.min_requests} answered requests that set max_tokens "
            "in this range; requests set it (or max_completion_tokens) in their body."
        )
    elif not found.flagged:
        notes.append(
            f"No max_tokens is {found.ratio:g} times or more above the 99th percentile of the "
            "answers."
        )
    if found.cut:
        notes.append(
            "More models and keys set max_tokens than are read at once: some are left out; "
            "narrow the range or choose a workspace."
        )
    if found.without_max_tokens:
        notes.append(
            f"{found.without_max_tokens:,} answered requests set no max_tokens: budgets "
            "reserve them at the gateway's default output length."
        )
    return notes


def error_notes(found: Errors) -> list[str]:
    notes = []
    if not found.groups:
        notes.append("No provider call failed in this range.")
    if found.more_groups:
        notes.append(f"{found.more_groups:,} smaller groups of errors are not listed.")
    if found.messages_left_out:
        notes.append(
            f"{found.messages_left_out:,} rarer distinct messages were not read (only the most "
            "frequent are grouped)."
        )
    return notes
