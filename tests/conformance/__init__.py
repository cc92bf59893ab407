"""Conformance tests: expected values derived from each method's reference code, each naming file and line."""
