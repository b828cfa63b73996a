"""One module per group of routes; `api.app` includes them all."""
