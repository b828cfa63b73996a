"""A loaded index version to hits and answers: dense, lexical and fused ranking, scope (permissions and filters),
highlights, facets, answers, and the evaluation metrics. Reads through rolesearch.store; never builds an index."""
