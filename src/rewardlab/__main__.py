"""`python -m rewardlab ...` runs the `rewardlab` command."""

from rewardlab.cli import main

raise SystemExit(main())
