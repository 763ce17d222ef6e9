"""The point-cloud transformer backbone: equivariance, masking, shapes, registry, training."""
import pytest
import torch

from bayesgen.core import registry
from bayesgen.plugins.backbones.transformer import PointTransformer

N, C = 12, 3
SMALL = dict(width=16, depth=2, heads=2, fourier_features=8)


def masked_network(seed: int = 0) -> PointTransformer:
    """A network with a mask + 2-column global condition and a non-zero output layer."""
    torch.manual_seed(seed)
    network = PointTransformer(N * C, cond_features=N + 2, feature_shape=(N, C), mask_features=N, **SMALL)
    torch.nn.init.normal_(network.output[-1].weight)
    return network.eval()


def inputs(batch: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(batch, N * C, generator=generator)
    t = torch.rand(batch, generator=generator)
    mask = (torch.rand(batch, N, generator=generator) > 0.3).float()
    mask[0] = 0.0  # an event without real points
    label = torch.nn.functional.one_hot(torch.arange(batch) % 2, 2).float()
    return x, t, torch.cat([mask, label], dim=1)


def test_permuting_points_permutes_the_output():
    network = masked_network()
    x, t, cond = inputs()
    permutation = torch.randperm(N, generator=torch.Generator().manual_seed(2))
    x_permuted = x.reshape(-1, N, C)[:, permutation].reshape(-1, N * C)
    cond_permuted = torch.cat([cond[:, :N][:, permutation], cond[:, N:]], dim=1)
    with torch.no_grad():
        out = network(x, t, cond).reshape(-1, N, C)
        out_permuted = network(x_permuted, t, cond_permuted).reshape(-1, N, C)
    assert out.abs().max() > 0.1
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out_permuted, out[:, permutation], atol=1e-5, rtol=0)


def test_padded_points_do_not_change_real_points():
    network = masked_network()
    x, t, cond = inputs()
    real = cond[:, :N].bool()
    changed = x.reshape(-1, N, C).clone()
    changed[~real] = 100.0 * torch.randn(int((~real).sum()), C)
    with torch.no_grad():
        out = network(x, t, cond).reshape(-1, N, C)
        out_changed = network(changed.reshape(-1, N * C), t, cond).reshape(-1, N, C)
    torch.testing.assert_close(out_changed[real], out[real], atol=1e-5, rtol=0)
    assert not torch.allclose(out_changed[~real], out[~real])


def test_shapes_zero_initial_output_and_errors():
    x, t, cond = inputs(batch=3)
    network = PointTransformer(N * C, cond_features=N + 2, feature_shape=(N, C), mask_features=N, **SMALL)
    assert network(x, t, cond).shape == (3, N * C)
    assert torch.equal(network(x, t, cond), torch.zeros(3, N * C))
    narrow = PointTransformer(N * C, out_features=N * 2, cond_features=2, feature_shape=(N, C), **SMALL)
    assert narrow(x, t, cond[:, N:]).shape == (3, N * 2)
    frequencies = narrow.state_dict()["time_embedding.0.frequencies"]  # persistent: saved in checkpoints
    torch.manual_seed(5)
    assert torch.equal(PointTransformer(N * C, feature_shape=(N, C), **SMALL).time_embedding[0].frequencies,
                       frequencies)
    with pytest.raises(ValueError, match=r"whole point clouds: in_features=18 is not N\*C=36.*ddpm or cfm"):
        PointTransformer(18, feature_shape=(N, C))
    with pytest.raises(ValueError, match=r"feature_shape \(N, C\)"):
        PointTransformer(N * C)
    with pytest.raises(ValueError, match="multiple of the 12 points"):
        PointTransformer(N * C, out_features=N * 2 + 1, feature_shape=(N, C))
    with pytest.raises(ValueError, match="pass cond"):
        network(x, t)
    with pytest.raises(ValueError, match="mask_features=5"):
        PointTransformer(N * C, cond_features=N + 2, feature_shape=(N, C), mask_features=5)


def test_without_a_declared_mask_every_column_is_a_global_condition():
    """N + 2 condition columns are no point mask unless the process declares one: every point
    is real, so changing any point's features changes the other points' outputs."""
    torch.manual_seed(0)
    plain = PointTransformer(N * C, cond_features=N + 2, feature_shape=(N, C), **SMALL)
    torch.nn.init.normal_(plain.output[-1].weight)
    plain.eval()
    x, t, cond = inputs()
    real = cond[:, :N].bool()
    changed = x.reshape(-1, N, C).clone()
    changed[~real] += 10.0
    with torch.no_grad():
        out = plain(x, t, cond).reshape(-1, N, C)
        out_changed = plain(changed.reshape(-1, N * C), t, cond).reshape(-1, N, C)
    assert not torch.allclose(out_changed[real], out[real], atol=1e-3)


def test_transformer_is_registered():
    registry.registry(refresh=True)
    assert registry.get_backbone("transformer") is PointTransformer


def test_it_learns_to_centre_point_clouds():
    torch.manual_seed(0)
    points = 8
    network = PointTransformer(points * C, feature_shape=(points, C), width=32, depth=2, heads=2,
                               fourier_features=8)
    optimiser = torch.optim.Adam(network.parameters(), lr=3e-3)
    x = torch.randn(64, points, C)
    target = (x - x.mean(dim=1, keepdim=True)).reshape(64, -1)
    x, t = x.reshape(64, -1), torch.rand(64)
    losses = []
    for _ in range(30):
        loss = (network(x, t) - target).pow(2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
