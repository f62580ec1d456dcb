"""A client for the reward service (api.md): `RewardClient` (sync) and `AsyncRewardClient` (asyncio).

    from trainer_client.client import RewardClient

    with RewardClient("http://rewards:8000", api_key="...") as client:  # or REWARD_SERVICE_URL / _API_KEY
        results = client.score([{"id": "q1-r0", "group_id": "q1", "completion": text, "reference": ref}],
                               advantages="grpo")
        results[0].reward, results[0].mask, results[0].advantage

Errors: everything this package raises about the service is a `RewardServiceError`; `ServiceUnavailable`
(transient, after the retries), `InvalidRequest` (the caller's bug) and `AuthenticationError` (the tree
and what each carries: `trainer_client.client.errors`).

What a caller can rely on:
* One `ScoredItem` per input item, in input order. An item the service could not score (`timeout`,
  `error`) has `mask` True and `reward` None, never 0: leave it out of the update.
* A batch over the server's item limit (read from GET /v1/config, or `max_items=`) or body limit is
  split into chunks, at most `max_concurrency` in flight at once. When advantages are asked for and
  the batch is split, they are computed here with the service's own function
  (`reward_service.scoring.advantages`), so a group that spans chunks gets what one request would give.
* Connection errors (a refused, reset or timed-out connection) and 429/502/503/504 are retried with
  tenacity: exponential backoff with jitter, never sooner than the server's Retry-After, bounded in
  attempts and in total time. A retry is safe: the service caches results by content, so a chunk it
  already scored is answered from the cache.
"""

from trainer_client.client._clients import DEFAULT_URL, AsyncRewardClient, RewardClient
from trainer_client.client.errors import AuthenticationError, InvalidRequest, RewardServiceError, ServiceUnavailable
from trainer_client.client.results import ScoredItem, ScoredItems, grpo_items

__all__ = [
    "DEFAULT_URL",
    "AsyncRewardClient",
    "AuthenticationError",
    "InvalidRequest",
    "RewardClient",
    "RewardServiceError",
    "ScoredItem",
    "ScoredItems",
    "ServiceUnavailable",
    "grpo_items",
]
