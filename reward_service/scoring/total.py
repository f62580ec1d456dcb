"""One item end to end: parse, answer reward, graph rewards with gates, length, weighted total."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from reward_service.errors import GraphError
from reward_service.graph import parse_graph
from reward_service.parsing.completion import parse_completion
from reward_service.scoring import choice, measures  # noqa: F401  (registers the answer scorers)
from reward_service.scoring.config import DEFAULT_REWARD_CONFIG, RewardConfig
from reward_service.scoring.graph_reward import score_graph
from reward_service.scoring.reference import Reference, validate_reference
from reward_service.scoring.registry import AnswerScore, answer_scorer
from reward_service.scoring.result import ScoreResult

log = logging.getLogger(__name__)

MAX_ANSWER_CHARS = 1024
MAX_TRACK_ANSWER_CHARS = 32768


def _answer(answers: list[str], reference: Reference) -> AnswerScore:
    if not answers:
        return AnswerScore(0.0, "answer_missing")
    if len(answers) > 1:
        return AnswerScore(0.0, "answer_ambiguous")
    text = answers[0].strip()
    limit = MAX_TRACK_ANSWER_CHARS if reference.task_type == "track_iou" else MAX_ANSWER_CHARS
    if len(text) > limit:
        return AnswerScore(0.0, "answer_too_large")
    return answer_scorer(reference.task_type)(text, reference)


def _total(components: Mapping[str, float | None], config: RewardConfig) -> float:
    return sum(config.weights[k] * v for k, v in components.items() if v is not None)


def _score(completion: str, ref: Reference, config: RewardConfig, num_tokens: int | None, explain: bool) -> ScoreResult:
    ref_graph = ref.relation_graph
    graph_edge_exists = ref_graph is not None and ref_graph.edge_defined
    notes: list[str] = []
    diagnostics: dict[str, Any] = {"notes": notes}
    if len(completion) > config.max_completion_chars:
        components: dict[str, float | None] = {
            "format": 0.0,
            "answer": 0.0,
            "graph_node": 0.0 if ref_graph is not None else None,
            "graph_edge": 0.0 if graph_edge_exists else None,
            "length": 0.0 if num_tokens is not None else None,
        }
        notes.append("completion_too_large")
        return ScoreResult("ok", _total(components, config), components, diagnostics)

    parsed = parse_completion(completion)
    fmt = 1.0 if parsed.format else 0.0
    answer = _answer(parsed.answers, ref)
    if answer.note:
        notes.append(answer.note)
    if explain:
        diagnostics["answer"] = answer.parsed

    graph_node: float | None = None
    graph_edge: float | None = None
    if ref_graph is not None:
        graph_node, graph_edge = 0.0, (0.0 if graph_edge_exists else None)
        try:
            pred = parse_graph(parsed.graphs)
        except GraphError as exc:
            notes.append(exc.note)
        else:
            gated = (config.requires_format and not parsed.format) or (
                config.requires_answer and answer.value < 0.5
            )
            # A gated item's graph terms are 0 whatever they would be: they are computed only to be
            # explained (a malformed completion's graph still parses, for its note).
            if not gated or explain:
                result = score_graph(pred, ref_graph, ref.graph_scale, config.angle_mode, config.node_weighting,
                                     explain)
                if not gated:
                    graph_node, graph_edge = result.node, result.edge
                if explain:
                    diagnostics["graph"] = pred.to_json()
                    diagnostics["correspondence"] = result.correspondence

    length: float | None = None
    if num_tokens is not None:
        in_window = config.min_tokens <= num_tokens <= config.max_tokens
        length = 1.0 if answer.value > 0.1 and in_window else 0.0

    components = {"format": fmt, "answer": answer.value, "graph_node": graph_node, "graph_edge": graph_edge,
                  "length": length}
    return ScoreResult("ok", _total(components, config), components, diagnostics)


def score(
    completion: str,
    reference: Mapping[str, Any] | Reference,
    config: RewardConfig | None = None,
    num_tokens: int | None = None,
    explain: bool = False,
) -> ScoreResult:
    """Score one completion against its reference (reward-spec v1).

    An invalid reference raises `InvalidReference` (the caller's bug). A completion never raises: its
    faults are zeros with notes, and an unexpected exception becomes `status: "error"`, masked.
    """
    ref = validate_reference(reference)
    try:
        if not isinstance(completion, str):
            raise TypeError("completion must be a string")
        return _score(completion, ref, config or DEFAULT_REWARD_CONFIG, num_tokens, explain)
    except Exception as exc:  # one item's bug must not crash a batch, nor turn into a silent 0
        log.exception("scoring failed for one item")
        return ScoreResult.unscored("error", f"{type(exc).__name__}: {exc}")


def score_batch(
    items: Iterable[Mapping[str, Any]], config: RewardConfig | None = None, explain: bool = False
) -> list[ScoreResult]:
    """Score `{"completion", "reference", "num_tokens"?}` items in order. Raises on an invalid reference."""
    return [
        score(item["completion"], item["reference"], config, item.get("num_tokens"), explain) for item in items
    ]


__all__ = ["score", "score_batch"]
