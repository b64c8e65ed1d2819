"""`WeightEMA`: an exponential moving average of the weights that is validated, checkpointed, tested and exported
in place of the last step's weights (a recipe's `trainer.callbacks`).

Lightning's `WeightAveraging` does the bookkeeping: it keeps the average (a copy of the module), swaps it in for
each validation and puts it in a checkpoint's `state_dict`, the trained weights beside it to resume from, so
`ModelCheckpoint` chooses an epoch by the average's score and `n2m export` reads the average. What is n2m's is the
average itself. Lightning's `EMAWeightAveraging` starts from the first step's weights and decays them like any
other, so after t steps they still weigh decay^t: 0.995 keeps 22% of them after 300 steps, and a short run
validates, and exports, mostly its first step. This average is bias-corrected, as Adam's moments are: step k of t
weighs decay^(t−k), normalized over the steps taken, so a long run (decay^t ≈ 0) is the same as Lightning's and a
short one averages its own steps: all of them, nearly alike, when it is much shorter than 1 / (1 − decay).

Buffers (batch norm's running statistics) are not averaged: they follow the trained model, as with
`use_buffers: false`, which n2m's CLI asks of every weight-averaging callback.
"""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import WeightAveraging
from torch.optim.swa_utils import get_ema_multi_avg_fn


def update_weight(decay: float, updates: int) -> float:
    """How much the newest weights count in the average after `updates` earlier ones (0: the first, all of it)."""
    return (1.0 - decay) / (1.0 - decay ** (updates + 1))


class WeightEMA(WeightAveraging):
    """Bias-corrected exponential moving average of the parameters, updated after every optimizer step.

    Args:
        decay: how much the average keeps of itself at each step: it spans about 1 / (1 − decay) steps
            (0.995: the last 200).
    """

    def __init__(self, decay: float = 0.999) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"trainer.callbacks: WeightEMA's init_args.decay={decay} must lie between 0 and 1, "
                             "not at either end (e.g. 0.999: an average over about the last 1,000 steps)")  # fmt: skip
        super().__init__(use_buffers=False, multi_avg_fn=self.blend)
        self.decay = decay

    def blend(self, averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        """`AveragedModel`'s update (its first update copies; this is every later one): PyTorch's fused EMA step
        with the decay that gives the newest weights their bias-corrected share."""
        weight = update_weight(self.decay, int(n_averaged))
        get_ema_multi_avg_fn(1.0 - weight)(averaged, current, n_averaged)
