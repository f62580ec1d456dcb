"""TRL: the reward service as `GRPOTrainer(reward_funcs=...)`, in one line.

    from trainer_client.integrations.trl import reward_function, component_reward_functions

    trainer = GRPOTrainer(model, reward_funcs=reward_function("http://rewards:8000"), ...)
    # or one function per component, so TRL's own `rewards/<name>/mean` curves show each of them:
    funcs, weights = component_reward_functions("http://rewards:8000")
    trainer = GRPOTrainer(model, reward_funcs=funcs, args=GRPOConfig(reward_weights=weights, ...), ...)

TRL 1.16 calls a reward function as `f(prompts=, completions=, completion_ids=, **dataset_columns,
trainer_state=, log_extra=, log_metric=)` and turns a `None` into NaN; a row where every function says
`None` gets no advantage. So an item the service could not score (`timeout`, `error`) is `None` here,
never 0, and is counted in the `reward_service/masked_fraction` metric and logged.

* The reference comes from a dataset column (`reference` unless told otherwise), as a dict or its JSON
  text; completions may be plain or conversational (the last assistant message is scored); each
  item's `num_tokens` is the length of its `completion_ids`.
* The functions are picklable objects with a `__name__`: the client is made in the process that calls
  them. The async variants (TRL runs async reward functions concurrently) use `AsyncRewardClient`.
* The component functions share one request per batch: the first to be called scores the batch, the
  others read its results. Their `reward_weights` are the service's weights (its default config, with
  `config` merged over it), so TRL's weighted sum is the service's reward.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reward_service.scoring import COMPONENTS, RewardConfig
from trainer_client.client import AsyncRewardClient, RewardClient, ScoredItems
from trainer_client.integrations._common import (
    AdapterError,
    completion_text,
    masked_summary,
    read_reference,
)

__all__ = ["component_reward_functions", "reward_function"]

log = logging.getLogger("trainer_client.integrations.trl")


class _BatchScorer:
    """Scores one TRL batch, once, for every reward function of ours that TRL calls with it.

    TRL passes the same `completions` list to each reward function of a step: that object identifies the
    batch (a reference to it is kept, so its id cannot be reused by a later batch).
    """

    def __init__(self, base_url: str | None, api_key: str | None, reference_column: str,
                 config: Mapping[str, Any] | None, client_options: Mapping[str, Any] | None) -> None:
        self.base_url, self.api_key = base_url, api_key
        self.reference_column = reference_column
        self.config = dict(config) if config else None
        self.client_options = dict(client_options or {})
        self._reset()

    def _reset(self) -> None:
        self._client: RewardClient | None = None
        self._aclient: AsyncRewardClient | None = None
        self._last: tuple[Any, ScoredItems] | None = None
        self._pending: tuple[Any, asyncio.Future[ScoredItems]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("base_url", "api_key", "reference_column", "config", "client_options")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    def items(self, completions: Sequence[Any], completion_ids: Sequence[Sequence[int]] | None,
              columns: Mapping[str, Any]) -> list[dict[str, Any]]:
        references = columns.get(self.reference_column)
        if references is None:
            raise AdapterError(f"the dataset has no {self.reference_column!r} column for the references "
                               f"(columns: {sorted(k for k in columns if not k.startswith(('log_', 'trainer_')))}); "
                               "pass reference_column=")
        if len(references) != len(completions):
            raise AdapterError(f"{len(completions)} completions but {len(references)} references")
        items = []
        for i, (completion, reference) in enumerate(zip(completions, references, strict=True)):
            item: dict[str, Any] = {"id": str(i), "completion": completion_text(completion, f"completion {i}"),
                                    "reference": read_reference(reference, f"row {i}")}
            if completion_ids is not None:
                item["num_tokens"] = len(completion_ids[i])
            items.append(item)
        return items

    def _report(self, results: ScoredItems, columns: Mapping[str, Any]) -> None:
        """TRL's own logs: the masked fraction as a metric, each completion's notes in its table."""
        if results.masked:
            log.warning("%s", masked_summary(results))
        log_metric: Callable[[str, float], None] | None = columns.get("log_metric")
        log_extra: Callable[[str, list[Any]], None] | None = columns.get("log_extra")
        if log_metric is not None and len(results):
            log_metric("reward_service/masked_fraction", results.masked / len(results))
        if log_extra is not None:
            log_extra("reward_service_notes", [", ".join(r.notes) if not r.mask else r.status for r in results])

    def score(self, completions: Sequence[Any], completion_ids: Sequence[Sequence[int]] | None,
              columns: Mapping[str, Any]) -> ScoredItems:
        if self._last is not None and self._last[0] is completions:
            return self._last[1]
        if self._client is None:
            self._client = RewardClient(self.base_url, self.api_key, **self.client_options)
        results = self._client.score(self.items(completions, completion_ids, columns), config=self.config)
        self._last = (completions, results)
        self._report(results, columns)
        return results

    async def ascore(self, completions: Sequence[Any], completion_ids: Sequence[Sequence[int]] | None,
                     columns: Mapping[str, Any]) -> ScoredItems:
        if self._pending is None or self._pending[0] is not completions:
            if self._aclient is None:
                self._aclient = AsyncRewardClient(self.base_url, self.api_key, **self.client_options)
            items = self.items(completions, completion_ids, columns)
            task = asyncio.ensure_future(self._aclient.score(items, config=self.config))
            self._pending = (completions, task)
            results = await task
            self._report(results, columns)
            return results
        return await self._pending[1]


class ServiceReward:
    """The service's total reward for each completion; None for one it could not score."""

    def __init__(self, scorer: _BatchScorer, name: str) -> None:
        self.scorer = scorer
        self.__name__ = name

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any],
                 completion_ids: Sequence[Sequence[int]] | None = None, **columns: Any) -> list[float | None]:
        return self.scorer.score(completions, completion_ids, columns).rewards


class AsyncServiceReward(ServiceReward):
    async def __call__(self, prompts: Sequence[Any], completions: Sequence[Any],  # type: ignore[override]
                       completion_ids: Sequence[Sequence[int]] | None = None, **columns: Any) -> list[float | None]:
        return (await self.scorer.ascore(completions, completion_ids, columns)).rewards


class ComponentReward:
    """One reward component (`format`, `answer`, ...) for each completion: None when the component does
    not apply to the item (a graph term without a reference graph) or the item could not be scored."""

    def __init__(self, scorer: _BatchScorer, component: str) -> None:
        self.scorer = scorer
        self.__name__ = component

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any],
                 completion_ids: Sequence[Sequence[int]] | None = None, **columns: Any) -> list[float | None]:
        results = self.scorer.score(completions, completion_ids, columns)
        return [None if r.mask else r.components[self.__name__] for r in results]


class AsyncComponentReward(ComponentReward):
    async def __call__(self, prompts: Sequence[Any], completions: Sequence[Any],  # type: ignore[override]
                       completion_ids: Sequence[Sequence[int]] | None = None, **columns: Any) -> list[float | None]:
        results = await self.scorer.ascore(completions, completion_ids, columns)
        return [None if r.mask else r.components[self.__name__] for r in results]


def reward_function(base_url: str | None = None, api_key: str | None = None, *, reference_column: str = "reference",
                    config: Mapping[str, Any] | None = None, asynchronous: bool = False,
                    name: str = "video_str_reward", client_options: Mapping[str, Any] | None = None) -> ServiceReward:
    """The service's total reward as one TRL reward function (`base_url`, `api_key`: as `RewardClient`;
    `config`: a partial reward config sent with every request; `client_options`: more `RewardClient`
    arguments)."""
    scorer = _BatchScorer(base_url, api_key, reference_column, config, client_options)
    return (AsyncServiceReward if asynchronous else ServiceReward)(scorer, name)


def component_reward_functions(base_url: str | None = None, api_key: str | None = None, *,
                               reference_column: str = "reference", config: Mapping[str, Any] | None = None,
                               asynchronous: bool = False, client_options: Mapping[str, Any] | None = None,
                               ) -> tuple[list[ComponentReward], list[float]]:
    """One TRL reward function per component, sharing one request per batch, and the weights to pass
    as `GRPOConfig(reward_weights=...)`: the service's default weights with `config` merged over them."""
    scorer = _BatchScorer(base_url, api_key, reference_column, config, client_options)
    with RewardClient(base_url, api_key, **dict(client_options or {})) as client:
        server = client.server_config()
    merged = RewardConfig.build(config, base=RewardConfig.build(server.config))
    kind = AsyncComponentReward if asynchronous else ComponentReward
    return [kind(scorer, c) for c in COMPONENTS], [float(merged.weights[c]) for c in COMPONENTS]
