"""One package per shape, each with the same files (`data`, `model`, `task`, `predictor`, `outputs`, `metrics`)
and one line in `n2m.registry`. A shape imports the core, never another shape, the server or the CLI."""
