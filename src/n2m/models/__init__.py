"""Plain `nn.Module`s (no Lightning), so an exported model runs anywhere torch runs."""

from n2m.models.sequence import SequenceModel

__all__ = ["SequenceModel"]
