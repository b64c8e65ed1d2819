"""The N2M shape: a sequence in, another sequence out, generated until end-of-sequence (translation, dialogue,
summarization). Nothing is imported here, so loading the predictor imports no training code."""
