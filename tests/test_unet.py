"""The 2D U-Net backbone: shapes, conditioning, attention placement, errors, registry, training."""
import pytest
import torch
from torch import nn

from bayesgen.core import registry
from bayesgen.plugins.backbones.unet import AttentionBlock, UNet

TINY = dict(channels=8, channel_mults=(1, 2), groups=4, embed_dim=16)


def tiny_unet(shape=(3, 16, 16), **options) -> UNet:
    torch.manual_seed(0)
    return UNet(shape[0] * shape[1] * shape[2], feature_shape=shape, **{**TINY, **options})


@pytest.mark.parametrize("shape", [(3, 16, 16), (3, 32, 32)])
def test_output_is_flat_and_zero_at_init(shape):
    net = tiny_unet(shape)
    x = torch.randn(2, shape[0] * shape[1] * shape[2])
    out = net(x, torch.rand(2))
    assert out.shape == x.shape
    assert torch.all(out == 0)
    one_channel = UNet(x.shape[1], out_features=shape[1] * shape[2], feature_shape=shape, **TINY)
    assert one_channel(x, torch.rand(2)).shape == (2, shape[1] * shape[2])


def test_condition_and_time_change_the_output():
    net = tiny_unet(cond_features=2)
    nn.init.normal_(net.output[-1].weight)
    x, t = torch.randn(1, 3 * 16 * 16), torch.full((1,), 0.5)
    class_0, class_1 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert not torch.allclose(net(x, t, class_0), net(x, t, class_1))
    assert not torch.allclose(net(x, t, class_0), net(x, torch.full((1,), 0.1), class_0))


def test_attention_only_where_asked():
    def n_attention(net: UNet) -> int:
        return sum(isinstance(module, AttentionBlock) for module in net.modules())

    assert n_attention(tiny_unet(attention_below=8)) >= 1
    assert n_attention(tiny_unet(attention_below=0)) == 0
    net = tiny_unet(attention_below=8)
    assert net(torch.randn(2, 3 * 16 * 16), torch.rand(2)).shape == (2, 3 * 16 * 16)


def test_invalid_configurations_are_rejected():
    with pytest.raises(ValueError, match=r"whole images: in_features=100 is not C\*H\*W=768.*use ddpm or cfm"):
        UNet(100, feature_shape=(3, 16, 16), **TINY)
    with pytest.raises(ValueError, match=r"must declare an image feature_shape \(C, H, W\)"):
        UNet(768, **TINY)
    with pytest.raises(ValueError, match=r"must declare an image feature_shape"):
        UNet(768, feature_shape=(256, 3), **TINY)
    with pytest.raises(ValueError, match="not divisible by 4"):
        UNet(3 * 18 * 18, feature_shape=(3, 18, 18), **{**TINY, "channel_mults": (1, 2, 2)})
    with pytest.raises(ValueError, match="out_features=100"):
        UNet(768, out_features=100, feature_shape=(3, 16, 16), **TINY)
    with pytest.raises(ValueError, match="pass cond"):
        tiny_unet(cond_features=2)(torch.randn(1, 768), torch.rand(1))


def test_unet_is_registered():
    registry.registry(refresh=True)
    assert registry.get_backbone("unet") is UNet


def test_unet_learns_to_reproduce_small_images():
    net = tiny_unet((1, 8, 8), channel_mults=(1, 2), attention_below=4)
    x, t = torch.randn(16, 64), torch.rand(16)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = (net(x, t) - x).pow(2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
