"""Activations: one asset per audience sync (audiences/*.yml), the activations job and schedules."""

from orchestration.defs.activations.assets import build_activation_defs

defs = build_activation_defs()
