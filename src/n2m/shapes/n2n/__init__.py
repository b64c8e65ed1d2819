"""The N2N shape: a tag per token (named entities as BIO spans, part-of-speech tags), over words or characters.

Its modules are those of every shape (`data`, `model`, `task`, `predictor`, `outputs`, …); none is imported
here, so loading the predictor imports no training code.
"""
