"""`n2m bench`: a suite of recipes (recipes/suites/*.yaml), each trained and tested as `n2m fit` does, and one
leaderboard of the metric each task is known by (`suite.json`, `suite.md`, `suite.html`)."""

from n2m.bench.command import main
from n2m.bench.suite import Suite, Task, load_suite

__all__ = ["Suite", "Task", "load_suite", "main"]
