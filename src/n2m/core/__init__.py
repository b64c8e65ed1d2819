"""What every shape shares. Modules on the inference path (`card`, `predictor`, `export`, `encoder`,
`batching`, `rows`) import no Lightning; `datamodule`, `task` and `callbacks` are the training side."""
