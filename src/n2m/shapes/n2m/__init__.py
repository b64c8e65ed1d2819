"""The N2M shape: a sequence in, another sequence out, generated until end-of-sequence (translation, dialogue,
summarization). Modules: `data` (Seq2SeqDataModule), `encoding` (tokenization shared by data and predictor),
`model` (the encoder-decoder, built three ways), `generation` (decoding and streaming), `metrics`, `task`
(Seq2SeqTask) and `predictor` (Seq2SeqPredictor). Nothing is imported here, so loading the predictor imports
no training code."""
