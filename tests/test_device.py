import pytest
import torch

from hemcli.engine.device import DeviceManager, pick_device, seed_everything
from hemcli.errors import HemError


def test_cpu_and_auto():
    assert pick_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert pick_device("auto").type == expected


def test_unknown_device_lists_choices():
    with pytest.raises(HemError, match="valid choices: auto, cpu, cuda, mps"):
        pick_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_cuda_is_a_clear_error():
    with pytest.raises(HemError, match="not available here"):
        pick_device("cuda")


def test_seed_repeats_draws():
    seed_everything(7)
    first = (torch.rand(3), __import__("numpy").random.rand(), __import__("random").random())
    seed_everything(7)
    second = (torch.rand(3), __import__("numpy").random.rand(), __import__("random").random())
    assert torch.equal(first[0], second[0]) and first[1:] == second[1:]


def test_amp_and_channels_last_only_on_cuda():
    dm = DeviceManager.from_config({"device": "cpu", "amp": "bf16", "channels_last": True})
    assert (dm.amp, dm.channels_last) == ("none", False)
    x = torch.rand(2, 3, 4, 4)
    with dm.autocast():
        assert (x @ x.transpose(-1, -2)).dtype == torch.float32
    assert not dm.grad_scaler().is_enabled()


def test_unknown_amp_mode():
    with pytest.raises(HemError, match="valid choices: none, bf16, fp16"):
        DeviceManager.from_config({"device": "cpu", "amp": "fp8"})


def test_describe_records_versions():
    info = DeviceManager.from_config({"device": "cpu"}).describe()
    assert info["device"] == "cpu" and info["torch"] == torch.__version__
    assert {"cuda", "python", "platform", "amp"} <= set(info)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_autocast_bf16():
    dm = DeviceManager.from_config({"device": "cuda", "amp": "bf16", "channels_last": True})
    x = torch.rand(2, 3, 8, 8, device="cuda")
    with dm.autocast():
        assert (x.flatten(1) @ x.flatten(1).T).dtype == torch.bfloat16
    assert dm.prepare_input(x).is_contiguous(memory_format=torch.channels_last)
    assert "gpu" in dm.describe()
