"""Serve an exported model: a JSON API with micro-batching and limits, a web page, Prometheus metrics.

>>> from n2m import Predictor
>>> from n2m.serve import create_app
>>> app = create_app(Predictor.from_pretrained("out/korsts"))   # run with uvicorn, or `n2m serve out/korsts`
"""

from n2m.serve.app import create_app
from n2m.serve.batching import MicroBatcher, QueueFull
from n2m.serve.limits import Limits

__all__ = ["Limits", "MicroBatcher", "QueueFull", "create_app"]
