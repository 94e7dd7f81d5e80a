"""The real-time recommendation API (Flask), built on the core ``recommender`` library.

``create_app(config)`` builds the app; ``python -m serving.production`` runs it in
production (granian by default, gunicorn on request), ``python -m serving --model PATH``
for development.

``create_app`` is imported on first use, not with the package: the production launcher
lives in this package and its master process must not import numpy (and the BLAS
libraries) before it has set their thread counts for the workers.
"""


def __getattr__(name: str):
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module 'serving' has no attribute {name!r}")


__all__ = ["create_app"]
