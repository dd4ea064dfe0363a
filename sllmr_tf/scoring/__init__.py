"""Offline LLM scoring: candidate lists -> LLM rankings -> pairwise constraints."""
