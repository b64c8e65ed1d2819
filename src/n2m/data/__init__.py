"""Data: from records to validated examples to tokenized, length-grouped batches."""

from n2m.data.datamodule import TextDataModule
from n2m.data.examples import Columns, SequenceExample, load_sequence_examples

__all__ = ["Columns", "SequenceExample", "TextDataModule", "load_sequence_examples"]
