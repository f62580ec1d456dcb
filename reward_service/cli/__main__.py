"""`python -m reward_service.cli ...`: the same as `reward-service ...`."""

import sys

from reward_service.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
