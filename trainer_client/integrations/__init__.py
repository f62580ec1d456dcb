"""One-line reward functions for other trainers: `trl` (TRL's GRPOTrainer) and `verl`.

OpenRLHF needs no code of ours: it posts to the service's `/get_reward` (README, "Use it from your
trainer"). Each module imports its framework's types only for type checking, so using an adapter
never imports more than the client.
"""
