"""Compiled hot path (built from ext/abidance/_core by setup.py)."""
