"""The bundle's configuration: validation (schema + semantics) and the frozen model."""
