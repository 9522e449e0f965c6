"""The tutorial net: shapes, parameter counts and FLOPs against hand-computed values."""

import pytest
import torch

from model import TutorialNet, count_parameters, forward_flops_per_image, training_flops_per_image


def test_tutorial_net_has_the_tutorials_62006_parameters():
    # conv1 3*6*25+6, conv2 6*16*25+16, fc1 400*120+120, fc2 120*84+84, fc3 84*10+10
    assert count_parameters(TutorialNet()) == 456 + 2416 + 48120 + 10164 + 850 == 62006


def test_layers_are_the_tutorials():
    net = TutorialNet()
    assert (net.conv1.in_channels, net.conv1.out_channels, net.conv1.kernel_size) == (3, 6, (5, 5))
    assert (net.conv2.in_channels, net.conv2.out_channels, net.conv2.kernel_size) == (6, 16, (5, 5))
    assert (net.fc1.in_features, net.fc1.out_features) == (400, 120)
    assert (net.fc2.in_features, net.fc2.out_features) == (120, 84)
    assert (net.fc3.in_features, net.fc3.out_features) == (84, 10)


@pytest.mark.parametrize("channels,size,batch", [(3, 32, 4), (1, 28, 2), (3, 32, 1)])
def test_output_shape(channels, size, batch):
    net = TutorialNet(in_channels=channels, image_size=size)
    assert net(torch.randn(batch, channels, size, size)).shape == (batch, 10)


def test_width_scales_channels_and_hidden_units():
    net = TutorialNet(width=4)
    assert (net.conv1.out_channels, net.conv2.out_channels) == (24, 64)
    assert (net.fc1.in_features, net.fc1.out_features, net.fc2.out_features) == (64 * 25, 480, 336)
    # hand count: 3*24*25+24, 24*64*25+64, 1600*480+480, 480*336+336, 336*10+10
    assert count_parameters(net) == 1824 + 38464 + 768480 + 161616 + 3370


def test_fashion_mnist_shape_net():
    net = TutorialNet(in_channels=1, image_size=28)
    # 28 -conv5-> 24 -pool-> 12 -conv5-> 8 -pool-> 4, so fc1 takes 16*4*4 = 256
    assert net.fc1.in_features == 256
    assert count_parameters(net) == (1 * 6 * 25 + 6) + 2416 + (256 * 120 + 120) + 10164 + 850


def test_forward_flops_match_hand_count():
    # 2 FLOPs per multiply-add: conv1 6*28*28 outputs * 75 MACs, conv2 16*10*10 * 150, fc 400*120, 120*84, 84*10
    conv1, conv2 = 2 * 6 * 28 * 28 * 75, 2 * 16 * 10 * 10 * 150
    fc = 2 * (400 * 120 + 120 * 84 + 84 * 10)
    assert forward_flops_per_image(TutorialNet(), (3, 32, 32)) == conv1 + conv2 + fc == 1_303_440


def test_training_flops_are_forward_plus_backward():
    # backward: weight and input gradients (2x forward) for every layer but conv1, whose input needs no gradient
    conv1, conv2 = 2 * 6 * 28 * 28 * 75, 2 * 16 * 10 * 10 * 150
    fc = 2 * (400 * 120 + 120 * 84 + 84 * 10)
    expected = (conv1 + conv2 + fc) + conv1 + 2 * (conv2 + fc)
    assert training_flops_per_image(TutorialNet(), (3, 32, 32)) == expected == 3_204_720


def test_flop_counting_leaves_the_model_untouched():
    net = TutorialNet()
    before = [p.clone() for p in net.parameters()]
    training_flops_per_image(net, (3, 32, 32))
    assert all(p.grad is None for p in net.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


@pytest.mark.parametrize("width", [0, -1.0, float("nan")])
def test_bad_width_is_refused(width):
    with pytest.raises(ValueError, match="width"):
        TutorialNet(width=width)
