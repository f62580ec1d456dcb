"""Scoring processes fed chunks of items, with per-item and per-request deadlines (see `pool.py`)."""
