"""Lightning tasks, one per shape, sharing `BaseTask` (optimizer, schedule, initialization)."""

from n2m.tasks.sequence import SequenceTask

__all__ = ["SequenceTask"]
