"""What the adapters share: references from dataset columns, completion text from chat messages, and a
client made where the adapter runs (after the trainer has pickled it to a worker)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from trainer_client.client import ScoredItem


class AdapterError(ValueError):
    """The trainer handed the adapter something it cannot turn into a reward request (a dataset bug)."""


def read_reference(value: Any, where: str) -> dict[str, Any]:
    """A reference as api.md's object, from a dict or its JSON text (datasets often store it as text)."""
    if isinstance(value, (str, bytes)):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise AdapterError(f"{where}: the reference is not JSON: {exc}") from None
    if not isinstance(value, Mapping):
        raise AdapterError(f"{where}: the reference must be an object or its JSON text, got {type(value).__name__}")
    return dict(value)


def completion_text(completion: Any, where: str) -> str:
    """The text to score: a plain completion, or the last assistant message of a conversational one
    (content as a string or as a list of `{"type": "text", "text": ...}` blocks)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence):
        for message in reversed(completion):
            if isinstance(message, Mapping) and message.get("role", "assistant") == "assistant":
                content = message.get("content", "")
                if isinstance(content, str):
                    return content
                if isinstance(content, Sequence):
                    return "".join(str(b.get("text", "")) for b in content
                                   if isinstance(b, Mapping) and b.get("type", "text") == "text")
        raise AdapterError(f"{where}: a conversational completion without an assistant message")
    raise AdapterError(f"{where}: a completion must be text or chat messages, got {type(completion).__name__}")


def masked_summary(results: Sequence[ScoredItem]) -> str:
    """One line on the items the service could not score, for the trainer's log."""
    masked = [r for r in results if r.mask]
    statuses = sorted({r.status for r in masked})
    return (f"{len(masked)} of {len(results)} rollouts could not be scored ({', '.join(statuses)}): "
            f"first: {masked[0].error}" if masked else "")
