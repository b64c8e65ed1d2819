"""N21: a text or a pair → one class, several classes, or a score (intent, sentiment, NLI, similarity).

The same files as every shape: `data` (TextDataModule), `model` (SequenceModel), `task` (SequenceTask),
`predictor` (SequencePredictor), `outputs` (result types), `metrics`; and N21's own `onnx` backend and
`ensemble`. Nothing is imported here, so loading a predictor never imports the training side.
"""
