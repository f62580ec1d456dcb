"""The service half behind the routes: one `Settings`, the request's path (cache -> workers -> cache)
in `pipeline.py`, the cache, Prometheus metrics, JSON logs, the error tree of api.md, process tuning."""
