"""pyoci conformance suite: runtime-spec cases runnable against any runc-compatible runtime."""
