"""Offline pipelines (training, batch scoring) and the ``recommender`` command line."""
