"""Seeded, vectorised sample data for Golden Time (placeholder docstring, rewritten below)."""

from .generator import (MALFORMED_KINDS, GenerationSummary, generate, summary_json,
                        target_customers_for_events)
from .simulate import BehaviourParams, DEFAULT_PARAMS

__all__ = ["generate", "target_customers_for_events", "GenerationSummary", "MALFORMED_KINDS",
           "BehaviourParams", "DEFAULT_PARAMS", "summary_json"]
