"""Checks turn facts plus policy into findings: pure functions, no I/O, stable IDs."""
