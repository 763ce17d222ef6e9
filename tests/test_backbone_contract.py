"""Every registered backbone through the contract of ``bayesgen/core/backbone.py``
(:func:`check_backbone`), on each kind of input it takes; and backbones that break one rule each
are named with that rule."""
import pytest
import torch
from torch import nn

from bayesgen.core import registry
from bayesgen.core.backbone import BackboneInputs, check_backbone
from bayesgen.core.errors import ConfigError, ContractError
from bayesgen.plugins.backbones.mlp import ResidualMLP

BACKBONES = sorted(registry.registry().plugins("backbones"))
SMALL = {"mlp": {"width": 16, "depth": 1}, "transformer": {"width": 16, "depth": 1, "heads": 2, "fourier_features": 8},
         "unet": {"channels": 8, "channel_mults": (1, 2), "groups": 4, "embed_dim": 16}}
POINTS, IMAGE = (6, 3), (2, 8, 8)
#: (name, in_features, out_features, inputs): the kinds of data core hands a backbone
KINDS = [
    ("vectors", 5, None, BackboneInputs()),
    ("vectors with a condition", 5, None, BackboneInputs(cond_features=3)),
    ("vectors to another width (a coupling or AR head)", 5, 7, BackboneInputs(cond_features=2)),
    ("point clouds", 18, None, BackboneInputs(feature_shape=POINTS)),
    ("point clouds with a mask and a class", 18, None, BackboneInputs(6 + 2, POINTS, mask_features=6)),
    ("images with a class", 128, None, BackboneInputs(cond_features=2, feature_shape=IMAGE)),
]


def test_the_registry_holds_the_built_in_backbones():
    assert {"mlp", "transformer", "unet"} <= set(BACKBONES)


@pytest.mark.parametrize("name", BACKBONES)
def test_every_registered_backbone_meets_its_contract_on_what_it_takes(name):
    """A backbone refuses inputs it cannot take with a ConfigError (the contract's way to say
    so); on every kind it takes, all rules hold, and it takes at least one."""
    factory = registry.get_backbone(name)
    taken = []
    for kind, in_features, out_features, inputs in KINDS:
        torch.manual_seed(0)
        try:
            check_backbone(factory, f"the backbone {name!r}", in_features, out_features, inputs, SMALL.get(name))
        except ConfigError:
            continue
        taken.append(kind)
    assert taken, f"the backbone {name!r} took none of the kinds of input"
    expected = {"mlp": 6, "transformer": 2, "unet": 1}
    if name in expected:
        assert len(taken) == expected[name], taken


# --- backbones that break one rule each -----------------------------------------------------------

class MixesRows(ResidualMLP):
    def forward(self, x, t, cond=None):
        return super().forward(x - x.mean(0), t, cond)


class IgnoresTime(ResidualMLP):
    def forward(self, x, t, cond=None):
        return super().forward(x, torch.zeros_like(t), cond)


class WrongWidth(ResidualMLP):
    def forward(self, x, t, cond=None):
        return super().forward(x, t, cond)[:, :-1]


class LeakyPoints(nn.Module):
    """Names mask_features but pools over every point, padding too."""

    def __init__(self, in_features, out_features=None, cond_features=0, feature_shape=None, mask_features=0):
        super().__init__()
        self.points = feature_shape[0]
        self.point = nn.Linear(feature_shape[1] + 1, feature_shape[1])
        self.pooled = nn.Linear(feature_shape[1], feature_shape[1])

    def forward(self, x, t, cond=None):
        h = x.reshape(len(x), self.points, -1)
        h = self.point(torch.cat([h, t[:, None, None].expand(-1, self.points, 1)], -1))
        return (h + self.pooled(h.mean(1))[:, None]).reshape(len(x), -1)


def flat_only(in_features, out_features=None, cond_features=0):
    return ResidualMLP(in_features, out_features, cond_features, width=8, depth=1)


@pytest.mark.parametrize("factory,inputs,rule", [
    (MixesRows, BackboneInputs(), "row i of the output must depend on row i of the inputs only "
                                  "(generation cuts batches into chunks)"),
    (IgnoresTime, BackboneInputs(), "the output must depend on t"),
    (WrongWidth, BackboneInputs(), "f(x, t, cond) must return (batch, out_features) = (6, 18), got torch.Size([6, 17])"),
    (LeakyPoints, BackboneInputs(6, POINTS, mask_features=6),
     "a padded point (mask 0) must not change the output of a real point (mask 1)"),
])
def test_a_broken_backbone_is_named_with_the_rule(factory, inputs, rule):
    options = {"width": 8, "depth": 1} if issubclass(factory, ResidualMLP) else {}
    with pytest.raises(ContractError) as error:
        check_backbone(factory, "the backbone 'broken'", 18, None, inputs, options)
    assert str(error.value) == f"the backbone 'broken' breaks the backbone contract: {rule}"


def test_a_backbone_without_feature_shape_is_told_what_core_passes():
    with pytest.raises(ContractError, match=r"the backbone 'flat' takes no feature_shape, which core passes for this "
                                            r"process \(feature_shape=\(6, 3\)\)"):
        check_backbone(flat_only, "the backbone 'flat'", 18, None, BackboneInputs(feature_shape=POINTS))


def test_the_mask_reaches_only_backbones_that_name_it():
    """The mlp does not name mask_features: it gets the mask columns as ordinary conditions; the
    transformer names it and gets it."""
    mask = BackboneInputs(6 + 2, POINTS, mask_features=6)
    assert mask.keywords(ResidualMLP) == {"cond_features": 8, "feature_shape": POINTS}
    assert mask.keywords(registry.get_backbone("transformer"))["mask_features"] == 6
    assert BackboneInputs().keywords(ResidualMLP) == {}
