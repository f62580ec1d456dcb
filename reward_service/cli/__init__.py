"""The command line, `reward-service serve | score | bench` (`main.py`); `python -m reward_service.cli`
runs it too. The service's web stack is imported only by `serve` and `bench --mode http`."""
