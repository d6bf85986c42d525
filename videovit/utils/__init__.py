"""Utilities shared by the tools and the engine (FLOP and parameter counting, ...)."""
