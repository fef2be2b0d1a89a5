"""Wall times of a call, synchronised on CUDA: the timing loop the benchmark scripts share."""

from __future__ import annotations

import time


def synchronized_times(function, repeats: int, device) -> list[float]:
    """Seconds of each of `repeats` calls of `function()`, with the CUDA queue drained before and after each
    (on a CUDA `device`; nothing to drain on the CPU)."""
    import torch  # deferred: gpu_check imports this module before it knows whether torch is needed

    def drain() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    times = []
    for _ in range(repeats):
        drain()
        start = time.perf_counter()
        function()
        drain()
        times.append(time.perf_counter() - start)
    return times
