"""One converter per construct; `autoconv.pipeline` runs them in order."""
