"""bayesgen: fast generative surrogates for collider events with Bayesian uncertainties."""
from bayesgen.app.api import compare, generate, laplace, reweight, train, validate
from bayesgen.core.errors import BayesgenError, UnknownPluginError
from bayesgen.core.registry import get_backbone, get_process, get_sampler, registry
from bayesgen.engine.config import (CompareConfig, GenerateConfig, LaplaceConfig, ReweightConfig, TrainConfig,
                                   ValidateConfig)

__version__ = "0.1.0"
__all__ = ["train", "generate", "validate", "compare", "reweight", "laplace", "TrainConfig", "GenerateConfig",
           "ValidateConfig", "CompareConfig", "ReweightConfig", "LaplaceConfig",
           "BayesgenError", "UnknownPluginError", "registry", "get_process", "get_backbone",
           "get_sampler", "__version__"]
