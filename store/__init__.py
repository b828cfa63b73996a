"""The index on disk, read and written: versions and their manifests, publishing, rollback and the build lock,
the passage table, vector rows, the FAISS and BM25 files and the query-time top-k over them.

Imports nothing else of rolesearch: ingest writes through it, search reads through it.
"""
