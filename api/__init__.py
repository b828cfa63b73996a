"""HTTP only: the FastAPI app from `create_app(settings)`, its routes, models, auth, metrics and hot reload."""
