"""jaxreg: L1, L2 and elastic-net regularization for JAX, fit in parallel over alphas and folds."""

from .implicit import degrees_of_freedom, information_criterion
from .losses import HuberLoss, LogisticLoss, Loss, MultinomialLoss, PoissonLoss, SquaredLoss
from .penalties import L1, L2, ElasticNet, GroupLasso, Penalty
from .solvers import Result, Status, solve

__version__ = "0.1.0"

__all__ = [
    "L1",
    "L2",
    "ElasticNet",
    "GroupLasso",
    "Penalty",
    "Loss",
    "SquaredLoss",
    "LogisticLoss",
    "PoissonLoss",
    "HuberLoss",
    "MultinomialLoss",
    "solve",
    "Result",
    "Status",
    "degrees_of_freedom",
    "information_criterion",
]
