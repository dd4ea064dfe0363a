"""Experiments across backbones x methods x seeds, and their results tables."""
