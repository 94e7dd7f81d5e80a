"""Every answer traced: a ``recommendation_id``, the experiment and variant that served it,
and a row in the answer log, so that attribution needs nothing from the client but the id.

The id is made in-process (:class:`recommender.events.AnswerIds`) and the log row only
queued (:class:`recommender.events.AnswerLog`, written in batches by a background
thread): tracing adds about a microsecond to an answer. Items carry their ``position``
(1-based) already (:class:`recommender.topn.Recommendation`).
"""

from __future__ import annotations

from .experiment_holder import Route
from .state import ServingState


def traced_answer(state: ServingState, endpoint: str, customer_id: str | None, route: Route, source: str, items, *,
                  item_ids: tuple[str, ...] | None = None, **head) -> dict:
    """The JSON body of an answer, logged: ``head`` fields (``item_id`` for similar items)
    come first, then the customer, model version, source, id, experiment, variant and items.
    ``items``: Recommendation objects, or their JSON already encoded (an ``orjson.Fragment``)
    with ``item_ids`` naming them."""
    recommendation_id = state.answer_ids.next()
    model_version = route.model.version
    if item_ids is None:
        item_ids = tuple([item.item_id for item in items])
    state.answer_log.record(recommendation_id, customer_id, endpoint, route.experiment, route.variant, model_version, item_ids)
    return {
        **head,
        "customer_id": customer_id,
        "model_version": model_version,
        "source": source,
        "recommendation_id": recommendation_id,
        "experiment": route.experiment,
        "variant": route.variant,
        "items": items,
    }
