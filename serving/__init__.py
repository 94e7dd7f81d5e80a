"""The real-time recommendation API (Flask), built on the core ``recommender`` library.

``create_app(config)`` builds the app; ``serving/gunicorn.conf.py`` runs it in
production, ``python -m serving --model PATH`` for development.
"""

from .app import create_app

__all__ = ["create_app"]
