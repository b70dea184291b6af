"""Analyses the converters read, each computed once per function: activity (names read and
written), liveness, trip bounds, and the node annotations that carry them."""
