"""chatgate domain logic: importable and testable without Ray."""
