"""rewardlab's version, in the one place the package (`rewardlab.__version__`) and its metadata (pyproject) read it."""

__version__ = "0.1.0"
