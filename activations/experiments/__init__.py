"""Experiments: GrowthBook-compatible assignment, Thompson-sampling allocation and effect statistics.

See /work/shared/SEMANTICS.md, section Experiments, for the rules these modules implement.
"""
