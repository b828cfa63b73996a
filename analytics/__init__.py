"""Search analytics: what readers ask, open and judge, kept in SQLite beside the index (docs/operations.md)."""
