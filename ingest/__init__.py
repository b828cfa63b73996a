"""Sources to a new index version: reading sources, chunking, role attribution, the access map, the embedding
cache, row planning and the build pipeline. Writes through rolesearch.store, encodes through rolesearch.encoder."""
