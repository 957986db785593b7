import pytest
import torch

from hemcli.errors import HemError
from hemcli.models import build_model, count_parameters


# Parameter counts of the paper's Table 3 (MNIST, 28x28, 10 classes); LeNet's is worked out by hand:
# conv 1->16 5x5 (416) + conv 16->16 5x5 (6416) + fc 256->50 (12850) + fc 50->10 (510) = 20192,
# two fewer than the 20,194 the paper prints.
@pytest.mark.parametrize("arch, params", [("mlp", 239_410), ("convnet", 30_954), ("lenet", 20_192)])
def test_paper_parameter_counts(arch, params):
    assert count_parameters(build_model(arch, (1, 28, 28), 10)) == params


@pytest.mark.parametrize("arch", ["mlp", "lenet", "convnet"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_sized_from_input(arch, shape):
    model = build_model(arch, shape, 7)
    out = model(torch.rand(3, *shape))
    assert out.shape == (3, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_unknown_arch_lists_choices():
    with pytest.raises(HemError, match="unknown arch 'resnet9'; valid choices: convnet, lenet, mlp"):
        build_model("resnet9", (1, 8, 8), 10)
