"""Video-STR reward service: rewards for GRPO training of video LLMs (reward-spec v1, api.md).

The folders follow the architecture; imports only go down this list:

* the command line, `reward-service serve | score | bench`: `cli/`;
* the service half (needs the `[service]` extra): `api/` (routes, request bodies, auth, errors on the
  wire), `service/` (settings, the request's path through cache and workers, cache, metrics, logs),
  `workers/` (scoring processes with per-item deadlines);
* the light half, imported by any trainer without FastAPI, Redis or torch: `synth/` (seeded scenes,
  tasks and completions), `scoring/` (the reward), `graph` (the relation graph model and its text),
  `parsing/` (completion blocks, numbers, tolerant JSON); and `schemas` (the wire models, pydantic
  only), `version`.
"""
