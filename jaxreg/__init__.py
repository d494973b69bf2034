"""jaxreg: L1, L2 and elastic-net regularization for JAX, fit in parallel over alphas and folds."""

from .implicit import degrees_of_freedom, information_criterion
from .losses import HuberLoss, LogisticLoss, Loss, MultinomialLoss, PoissonLoss, SquaredLoss
from .penalties import L1, L2, ElasticNet, GroupLasso, Penalty, tree_prox, tree_value
from .cv import CVResult, cross_validate
from .path import PathResult, alpha_grid, alpha_max, path
from .solvers import Result, Status, solve
from . import datasets

__version__ = "0.1.0"

__all__ = [
    "L1",
    "L2",
    "ElasticNet",
    "GroupLasso",
    "Penalty",
    "tree_value",
    "tree_prox",
    "Loss",
    "SquaredLoss",
    "LogisticLoss",
    "PoissonLoss",
    "HuberLoss",
    "MultinomialLoss",
    "solve",
    "Result",
    "Status",
    "alpha_max",
    "alpha_grid",
    "path",
    "PathResult",
    "cross_validate",
    "CVResult",
    "datasets",
    "degrees_of_freedom",
    "information_criterion",
]
