"""Where and when a number was measured: stamped on every results file (runs and benchmarks)."""

from __future__ import annotations

import datetime
import os
import platform


def machine_description() -> str:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, {device}, torch {torch.__version__}"


def today() -> str:
    return datetime.date.today().isoformat()
