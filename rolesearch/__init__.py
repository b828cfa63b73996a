"""rolesearch: semantic search and question answering over articles about ML engineering roles.

The package's parts keep their own folders at the repository root, mapped into it by
pyproject.toml (`rolesearch.ingest` is `ingest/`, and so on); ARCHITECTURE.md shows the parts and the
directions in which they may import each other. This folder holds only what all of them share:
the settings and the Ray cluster session.
"""

__version__ = "0.1.0"
