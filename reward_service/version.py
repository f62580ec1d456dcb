"""Scorer version: part of every response and of every cache key, so new code never serves old scores."""

SCORER_VERSION = "0.1.0"
