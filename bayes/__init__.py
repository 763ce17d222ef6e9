"""Bayesian networks: variational linear layers swapped into any backbone, and their ensembles."""
from bayesgen.bayes.layers import VariationalLinear
from bayesgen.bayes.model import (bayesianize, ensemble, is_bayesian, kl_divergence, named_variational_layers,
                                  variational_layers, weight_draws, width_parameters)

__all__ = ["VariationalLinear", "bayesianize", "ensemble", "is_bayesian", "kl_divergence",
           "named_variational_layers", "variational_layers", "weight_draws", "width_parameters"]
