import pytest
import torch

from topobook.training.unet import UNet, count_parameters


def test_shapes_and_paper_size():
    model = UNet(base_width=4, depth=3)
    assert model(torch.zeros(2, 1, 32, 48)).shape == (2, 1, 32, 48)
    # The paper's network: 64 base channels, 4 down-samplings, about 31 M parameters.
    assert 30e6 < count_parameters(UNet(base_width=64, depth=4)) < 32e6


def test_bad_input_raises():
    model = UNet(base_width=4, depth=2)
    with pytest.raises(ValueError, match="divisible"):
        model(torch.zeros(1, 1, 30, 32))
    with pytest.raises(ValueError, match="B, C, H, W"):
        model(torch.zeros(1, 32, 32))
    with pytest.raises(ValueError, match="base_width"):
        UNet(base_width=0)
