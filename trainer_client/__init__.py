"""The GRPO side of the reward loop: a client for the reward service, adapters for TRL and verl, and
a GRPO trainer of our own.

* `trainer_client.client`: `RewardClient` and `AsyncRewardClient` (base install: no torch, no web stack);
* `trainer_client.integrations.trl` and `.verl`: one-line reward functions for those trainers
  (OpenRLHF needs no adapter: point `--reward.remote_url` at the service's `/get_reward`);
* `trainer_client.data`, `.grpo`, `.rollout`, `.train`: the trainer (`[trainer]` extra, torch).

Nothing is imported here, so importing one part never pulls in another's dependencies.
"""
