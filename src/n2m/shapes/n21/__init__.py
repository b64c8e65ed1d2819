"""N21: a text or a pair → one class, several classes, or a score (intent, sentiment, NLI, similarity).
Nothing is imported here, so loading a predictor never imports the training side."""
