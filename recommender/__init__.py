"""Personalised recommendations from purchase history.

The core library: reading purchase data, the algorithms behind one interface, the
id-aware :class:`Model`, and model artifacts. It never imports Flask; ``training/``
and ``serving/`` build on it.
"""

from .algorithms import ALGORITHMS, DEFAULT_ALGORITHM, Algorithm, create_algorithm
from .artifacts import list_models, load_model, promote, rollback, save_model
from .catalog import Catalog, load_catalog
from .errors import ArtifactError, DataError, NotFittedError, RecommenderError, UnknownIdError
from .interactions import Interactions
from .model import Model
from .purchases import PurchaseLog, load_purchases
from .store_format import StoreFormat
from .topn import Recommendation, RecommendationList
from .vocabulary import IdVocabulary
from .weights import HistoryWeighting

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "Algorithm",
    "ArtifactError",
    "Catalog",
    "DataError",
    "HistoryWeighting",
    "IdVocabulary",
    "Interactions",
    "Model",
    "NotFittedError",
    "PurchaseLog",
    "Recommendation",
    "RecommendationList",
    "RecommenderError",
    "StoreFormat",
    "UnknownIdError",
    "create_algorithm",
    "list_models",
    "load_catalog",
    "load_model",
    "load_purchases",
    "promote",
    "rollback",
    "save_model",
]
