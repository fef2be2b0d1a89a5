"""sa_lib.core.devices: one device rule for every entry point."""

import pytest
import torch

from sa_lib.core.devices import DeviceError, resolve_device


def test_auto_and_named_devices():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu") == resolve_device(torch.device("cpu"))
    with pytest.raises(DeviceError, match="unknown device 'gpu'"):
        resolve_device("gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_a_missing_gpu_is_named():
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        resolve_device("cuda:0")
