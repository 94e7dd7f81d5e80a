"""The dashboard: server-rendered pages at /dashboard for the people who run the store.

Overview, customers, items, models (promote and roll back) and experiments, one module
per page group; :mod:`.blueprint` holds what they share. Templates are in
``serving/templates/dashboard/``, the stylesheet in ``serving/static/``.
"""

from . import customers, experiments, items, models, overview, signin  # noqa: F401 - each adds its routes
from .blueprint import dashboard

__all__ = ["dashboard"]
