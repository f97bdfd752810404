"""Feature serving: a read-only FastAPI app over the store (``pipewarden serve``). See
docs/serve.md."""

from .app import ServeApp, create_app

__all__ = ["ServeApp", "create_app"]
