"""scikit-learn estimators built on :func:`jaxreg.solve`, :func:`jaxreg.path`, :func:`jaxreg.cross_validate`.

``Lasso``, ``ElasticNet``, ``Ridge``, ``LogisticRegression`` (binary and multinomial), ``LassoCV``,
``ElasticNetCV`` and ``LogisticRegressionCV`` take scikit-learn's parameter names and defaults, minimize
scikit-learn's objectives and store scikit-learn's fitted attributes, so they drop into ``Pipeline``,
``GridSearchCV`` and ``clone``.  The estimators only validate, convert, call jaxreg and store results.

Differences from scikit-learn, all deliberate:

* ``max_iter`` counts FISTA iterations and defaults to 10000 (coordinate descent and L-BFGS need far
  fewer, more expensive iterations).  ``tol`` stops on the duality gap, with scikit-learn's scale for
  squared loss (``gap <= tol * ||y - mean(y)||**2 / n``) and the null model's deviance for logistic loss.
* Solver-specific parameters (``solver``, ``precompute``, ``selection``, ``random_state``, ``copy_X``,
  ``dual``, ``intercept_scaling``, ``n_jobs``, ``verbose``) and the deprecated ``penalty`` do not exist.
* Extra parameters: ``penalty_factor`` (per-feature penalty weights, glmnet's ``penalty.factor``; 0 leaves
  a feature unpenalized) and, for the CV estimators, ``select="min" | "1se"`` with ``alpha_1se_`` and the
  fitted full-data regularization path ``path_``.
* Sparse input is not accepted yet.

Compile once.  Hyper-parameters (``alpha``, ``l1_ratio``, ``C``, ``tol``, ``penalty_factor``, sample
weights, the alpha grid) are traced arguments of jaxreg's compiled programs: ``clone``, ``set_params``
and a grid search over them reuse one compiled program.  Data are padded with zero-weight rows and
zero (penalized) columns to bucketed shapes (at least 256 x 32, then powers of two up to 1024, then
multiples of 1/16 of the next power of two: at most 12.5% extra), so the unequal folds of a grid search
and data sets of similar size share it too.  Padding changes neither the problem nor its solution.
Structure is static: a change of ``max_iter``, ``fit_intercept``, ``positive``, the dtype, the number of
classes or the shape bucket compiles anew.

All squared-loss estimators share one penalty type (:class:`jaxreg.ElasticNet`, with ``l1_ratio=1`` for
the lasso and ``0`` for ridge) and so share compiled programs.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import jax
import numpy as np
import scipy.special
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import get_scorer
from sklearn.model_selection import check_cv
from sklearn.utils import check_array
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .cv import cross_validate
from .losses import LogisticLoss, MultinomialLoss, SquaredLoss
from .path import PathResult
from .penalties import ElasticNet as _ElasticNetPenalty
from .solvers import Status, solve

__all__ = [
    "Lasso",
    "ElasticNet",
    "Ridge",
    "LogisticRegression",
    "LassoCV",
    "ElasticNetCV",
    "LogisticRegressionCV",
]

_FLOATS = [np.float64, np.float32]
# Problems smaller than this are padded to it: their solve costs next to nothing, their compilation seconds.
_LEAST_ROWS, _LEAST_COLUMNS = 256, 32


# -- validation and conversion -----------------------------------------------------------------


def _bucket(m: int, least: int) -> int:
    """Padded size for ``m`` rows or columns: ``least``, or a power of two up to 1024, then the next
    multiple of 1/16 of the next power of two (at most 12.5% padding)."""
    if m <= least:
        return least
    k = (m - 1).bit_length()
    if m <= 1024:
        return 1 << k
    step = 1 << (k - 4)
    return -(-m // step) * step


def _check_real(
    name: str,
    value: Any,
    low: float = 0.0,
    high: float = np.inf,
    *,
    open_low: bool = False,
    allow_inf: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if np.isnan(v) or (np.isinf(v) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if v < low or (open_low and v == low) or v > high:
        bounds = f"{'(' if open_low else '['}{low}, {high}]"
        raise ValueError(f"{name} must lie in {bounds}, got {value!r}")
    return v


def _check_max_iter(max_iter: Any) -> int:
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    return int(max_iter)


def _check_select(select: Any) -> str:
    if select not in ("min", "1se"):
        raise ValueError(f"select must be 'min' or '1se', got {select!r}")
    return select


def _sample_weight(sample_weight: Any, n: int, dtype: Any) -> np.ndarray:
    """Non-negative sample weights of shape ``(n,)`` (ones for ``None``, a scalar is broadcast)."""
    if sample_weight is None:
        return np.ones(n, dtype)
    if isinstance(sample_weight, numbers.Number):
        sw = np.full(n, sample_weight, dtype)
    else:
        sw = check_array(sample_weight, ensure_2d=False, dtype=dtype, input_name="sample_weight")
        if sw.ndim != 1:
            raise ValueError(f"sample_weight must be 1-D or a scalar, got shape {sw.shape}")
        if sw.shape[0] != n:
            raise ValueError(f"sample_weight has {sw.shape[0]} entries but X has {n} samples")
    if np.any(sw < 0):
        raise ValueError("sample_weight must be non-negative")
    if not np.any(sw > 0):
        raise ValueError("sample_weight must contain at least one non-zero weight; all weights are zero")
    return sw


def _penalty_factor(penalty_factor: Any, n_features: int, dtype: Any) -> np.ndarray:
    if penalty_factor is None:
        return np.ones(n_features, dtype)
    pf = np.asarray(penalty_factor, dtype=dtype)
    if pf.shape != (n_features,):
        raise ValueError(f"penalty_factor must have shape (n_features,) = ({n_features},), got {pf.shape}")
    if not np.all(np.isfinite(pf)) or np.any(pf < 0):
        raise ValueError("penalty_factor must be finite and non-negative")
    return pf


class _Padded:
    """The data padded to bucketed shapes: zero-weight rows, zero columns with penalty factor 1."""

    def __init__(self, X: np.ndarray, y: np.ndarray, sw: np.ndarray, pf: np.ndarray) -> None:
        n, p = X.shape
        self.n, self.p = n, p
        N, P = _bucket(n, _LEAST_ROWS), _bucket(p, _LEAST_COLUMNS)
        dtype = jax.dtypes.canonicalize_dtype(X.dtype)  # float32 when JAX runs without x64
        self.X = np.zeros((N, P), dtype)
        self.X[:n, :p] = X
        self.y = np.concatenate([y, np.repeat(y[:1], N - n, axis=0)])  # any valid target: weight 0
        if self.y.dtype.kind == "f":
            self.y = self.y.astype(dtype)
        self.sw = np.concatenate([sw, np.zeros(N - n)]).astype(dtype)
        self.pf = np.concatenate([pf, np.ones(P - p)]).astype(dtype)

    def coef_init(self, coef: np.ndarray) -> np.ndarray:
        """Pad a warm start ``(n_features, ...)`` with zeros."""
        out = np.zeros((self.X.shape[1],) + coef.shape[1:], self.X.dtype)
        out[: self.p] = coef
        return out


class _Splits:
    """A fixed list of (train, test) index pairs, as a splitter for :func:`jaxreg.cross_validate`."""

    def __init__(self, splits: list) -> None:
        self.splits = splits

    def split(self, X: Any = None, y: Any = None, groups: Any = None) -> Any:
        return iter(self.splits)


def _warn_not_converged(est: Any, gap: float, n_iter: int, what: str = "") -> None:
    warnings.warn(
        f"{type(est).__name__}{what} did not converge: duality gap {gap:.3e} after {n_iter} iterations "
        f"(max_iter={est.max_iter}) is above tol={est.tol:g} relative to the null model's deviance. "
        "Increase max_iter, raise tol, or scale the features.",
        ConvergenceWarning,
        stacklevel=3,
    )


def _check_status(est: Any, status: np.ndarray, gap: np.ndarray, n_iter: np.ndarray, what: str = "") -> None:
    status, gap, n_iter = np.ravel(status), np.ravel(gap), np.ravel(n_iter)
    if np.any(status == Status.NONFINITE):
        # The solver rejects non-finite steps: the stored coefficients are its last finite iterate.
        k = int(np.argmax(status == Status.NONFINITE))
        warnings.warn(
            f"{type(est).__name__}{what} did not converge: the iterations produced non-finite values "
            f"(overflow) after {int(n_iter[k])} iterations, duality gap {float(gap[k]):.3e}; the "
            "coefficients are the last finite iterate. The input data may contain very large values "
            "and need scaling.",
            ConvergenceWarning,
            stacklevel=3,
        )
        return
    if np.any(status == Status.STALLED):
        k = int(np.argmax(np.where(status == Status.STALLED, gap, -np.inf)))
        warnings.warn(
            f"{type(est).__name__}{what} did not converge: the duality gap stopped decreasing at "
            f"{float(gap[k]):.3e} after {int(n_iter[k])} iterations, above tol={est.tol:g} relative to the "
            "null model's deviance. Rounding limits it: fit in float64, raise tol, or scale the features.",
            ConvergenceWarning,
            stacklevel=3,
        )
        return
    if np.any(status != Status.CONVERGED):
        worst = int(np.argmax(np.where(status != Status.CONVERGED, gap, -np.inf)))
        _warn_not_converged(est, float(gap[worst]), int(n_iter[worst]), what)


def _unpad_path(path: PathResult, p: int, feature_axis: int, dtype: Any) -> PathResult:
    """The full-data path as NumPy arrays, without the padded features."""

    def conv(a: Any) -> np.ndarray | None:
        return None if a is None else np.asarray(a)

    coef = np.asarray(path.coef, dtype)
    coef = np.take(coef, np.arange(p), axis=feature_axis)
    return PathResult(
        alphas=conv(path.alphas),
        l1_ratios=conv(path.l1_ratios),
        coef=coef,
        intercept=np.asarray(path.intercept, dtype),
        n_iter=conv(path.n_iter),
        gap=conv(path.gap),
        converged=conv(path.converged),
    )


# -- regressors --------------------------------------------------------------------------------


class _SquaredLossRegressor(RegressorMixin, BaseEstimator):
    """Shared fit / predict of Lasso, ElasticNet and Ridge: squared loss, elastic-net penalty."""

    def _strength(self, n_targets: int, sw_sum: float) -> tuple[np.ndarray, float]:  # pragma: no cover
        raise NotImplementedError

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        """Fit the model.

        Args:
          X: ``(n_samples, n_features)``.
          y: ``(n_samples,)`` or ``(n_samples, n_targets)``.
          sample_weight: ``(n_samples,)`` non-negative weights, or ``None``.

        Returns:
          ``self``.
        """
        tol = _check_real("tol", self.tol)
        max_iter = _check_max_iter(self.max_iter)
        X, y = validate_data(self, X, y, dtype=_FLOATS, multi_output=True, y_numeric=True)
        y = np.asarray(y, X.dtype)
        n, p = X.shape
        sw = _sample_weight(sample_weight, n, X.dtype)
        pf = _penalty_factor(self.penalty_factor, p, X.dtype)
        Y = y.reshape(n, -1)
        n_targets = Y.shape[1]
        alphas, l1_ratio = self._strength(n_targets, float(np.sum(sw)))
        data = _Padded(X, Y, sw, pf)
        warm = (
            self.warm_start
            and hasattr(self, "coef_")
            and np.shape(self.coef_)[-1] == p
            and np.reshape(self.coef_, (-1, p)).shape[0] == n_targets
        )
        coef = np.zeros((n_targets, p), X.dtype)
        intercept = np.zeros(n_targets, X.dtype)
        n_iter = np.zeros(n_targets, int)
        gap = np.zeros(n_targets, X.dtype)
        status = np.zeros(n_targets, int)
        for k in range(n_targets):
            penalty = _ElasticNetPenalty(
                alpha=alphas[k], l1_ratio=l1_ratio, weights=data.pf, positive=bool(self.positive)
            )
            init = {}
            if warm:
                init = {
                    "coef_init": data.coef_init(np.reshape(self.coef_, (-1, p))[k]),
                    "intercept_init": np.reshape(self.intercept_, (-1,))[k],
                }
            res = solve(
                data.X,
                data.y[:, k],
                SquaredLoss(),
                penalty,
                fit_intercept=bool(self.fit_intercept),
                sample_weight=data.sw,
                tol=tol,
                max_iter=max_iter,
                **init,
            )
            coef[k] = np.asarray(res.coef)[:p]
            intercept[k] = np.asarray(res.intercept) if self.fit_intercept else 0.0
            n_iter[k], gap[k], status[k] = int(res.n_iter), float(res.gap), int(res.status)
        _check_status(self, status, gap, n_iter)
        if y.ndim == 1:
            self.coef_, self.intercept_ = coef[0], intercept[0]
            self.n_iter_, self.dual_gap_ = int(n_iter[0]), gap[0]
        else:
            self.coef_, self.intercept_ = coef, intercept
            self.n_iter_, self.dual_gap_ = n_iter, gap
        return self

    def predict(self, X: Any) -> np.ndarray:
        """``X @ coef_.T + intercept_``: ``(n_samples,)`` or ``(n_samples, n_targets)``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_FLOATS, reset=False)
        return X @ np.asarray(self.coef_).T + self.intercept_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class ElasticNet(_SquaredLossRegressor):
    r"""Linear regression with an elastic-net penalty (scikit-learn's ``ElasticNet``), fit by FISTA.

    Minimizes over ``(w, b)``::

        1 / (2 * sum(s)) * sum_i s_i (y_i - x_i @ w - b)**2
            + alpha * sum_j f_j * (l1_ratio * |w_j| + (1 - l1_ratio) / 2 * w_j**2)

    with sample weights ``s`` (default 1) and penalty factors ``f = penalty_factor`` (default 1).
    A 2-D ``y`` fits one independent model per column.

    Parameters:
      alpha: penalty strength, ``>= 0``.
      l1_ratio: mixing in ``[0, 1]``: 1 is the lasso, 0 is ridge.
      fit_intercept: fit the unpenalized intercept ``b``.
      max_iter: maximal number of FISTA iterations (default 10000).
      tol: stop when the duality gap is at most ``tol * ||y - mean(y)||**2 / n`` (weighted).
      warm_start: start from the previous ``coef_`` when refitting.
      positive: constrain the coefficients to be non-negative.
      penalty_factor: ``(n_features,)`` non-negative per-feature factors ``f``; 0 = unpenalized.

    Attributes:
      coef_: ``(n_features,)`` or ``(n_targets, n_features)``.
      intercept_: float or ``(n_targets,)``.
      n_iter_: iterations run (int, or ``(n_targets,)``).
      dual_gap_: duality gap reached, in units of the objective above (scikit-learn's ``dual_gap_``).
      n_features_in_, feature_names_in_: as in scikit-learn.

    Example:
      >>> import numpy as np
      >>> from jaxreg.sklearn import ElasticNet
      >>> rng = np.random.default_rng(0)
      >>> X = rng.standard_normal((50, 4)); y = 2.0 * X[:, 0] + 0.1 * rng.standard_normal(50)
      >>> model = ElasticNet(alpha=0.1, l1_ratio=0.7).fit(X, y)
      >>> int((model.coef_ != 0).sum()), round(model.score(X, y), 2)
      (1, 0.99)
    """

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        l1_ratio: float = 0.5,
        fit_intercept: bool = True,
        max_iter: int = 10_000,
        tol: float = 1e-4,
        warm_start: bool = False,
        positive: bool = False,
        penalty_factor: Any = None,
    ) -> None:
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.positive = positive
        self.penalty_factor = penalty_factor

    def _strength(self, n_targets: int, sw_sum: float) -> tuple[np.ndarray, float]:
        alpha = _check_real("alpha", self.alpha)
        return np.full(n_targets, alpha), _check_real("l1_ratio", self.l1_ratio, 0.0, 1.0)


class Lasso(_SquaredLossRegressor):
    r"""Linear regression with an L1 penalty (scikit-learn's ``Lasso``), fit by FISTA.

    Minimizes over ``(w, b)``::

        1 / (2 * sum(s)) * sum_i s_i (y_i - x_i @ w - b)**2  +  alpha * sum_j f_j |w_j|

    with sample weights ``s`` (default 1) and penalty factors ``f = penalty_factor`` (default 1).
    A 2-D ``y`` fits one independent model per column.

    Parameters:
      alpha: penalty strength, ``>= 0``.
      fit_intercept: fit the unpenalized intercept ``b``.
      max_iter: maximal number of FISTA iterations (default 10000).
      tol: stop when the duality gap is at most ``tol * ||y - mean(y)||**2 / n`` (weighted).
      warm_start: start from the previous ``coef_`` when refitting.
      positive: constrain the coefficients to be non-negative.
      penalty_factor: ``(n_features,)`` non-negative per-feature factors ``f``; 0 = unpenalized.

    Attributes:
      coef_: ``(n_features,)`` or ``(n_targets, n_features)``.
      intercept_: float or ``(n_targets,)``.
      n_iter_: iterations run (int, or ``(n_targets,)``).
      dual_gap_: duality gap reached, in units of the objective above (scikit-learn's ``dual_gap_``).
      n_features_in_, feature_names_in_: as in scikit-learn.

    Example:
      >>> import numpy as np
      >>> from jaxreg.sklearn import Lasso
      >>> rng = np.random.default_rng(0)
      >>> X = rng.standard_normal((50, 4)); y = 2.0 * X[:, 0] + 0.1 * rng.standard_normal(50)
      >>> model = Lasso(alpha=0.1).fit(X, y)
      >>> model.coef_.round(2).tolist(), bool(model.dual_gap_ < 1e-4 * y.var())
      ([1.88, 0.0, 0.0, 0.0], True)
    """

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        fit_intercept: bool = True,
        max_iter: int = 10_000,
        tol: float = 1e-4,
        warm_start: bool = False,
        positive: bool = False,
        penalty_factor: Any = None,
    ) -> None:
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.positive = positive
        self.penalty_factor = penalty_factor

    def _strength(self, n_targets: int, sw_sum: float) -> tuple[np.ndarray, float]:
        return np.full(n_targets, _check_real("alpha", self.alpha)), 1.0


class Ridge(_SquaredLossRegressor):
    r"""Linear least squares with an L2 penalty (scikit-learn's ``Ridge``), fit by FISTA.

    Minimizes over ``(w, b)`` scikit-learn's (unnormalized) objective::

        sum_i s_i (y_i - x_i @ w - b)**2  +  alpha * sum_j f_j w_j**2

    with sample weights ``s`` (default 1) and penalty factors ``f = penalty_factor`` (default 1);
    that is jaxreg's ``L2(alpha / sum(s))`` on the mean loss.  A 2-D ``y`` fits one model per column,
    with ``alpha`` a scalar or one value per target.

    Parameters:
      alpha: penalty strength ``>= 0``, a float or ``(n_targets,)``.
      fit_intercept: fit the unpenalized intercept ``b``.
      max_iter: maximal number of FISTA iterations (default 10000).
      tol: stop when the duality gap (of the objective divided by ``2 * sum(s)``) is at most
        ``tol * ||y - mean(y)||**2 / n`` (weighted).  scikit-learn's direct solvers are exact instead.
      positive: constrain the coefficients to be non-negative.
      warm_start: start from the previous ``coef_`` when refitting.
      penalty_factor: ``(n_features,)`` non-negative per-feature factors ``f``; 0 = unpenalized.

    Attributes:
      coef_: ``(n_features,)`` or ``(n_targets, n_features)``.
      intercept_: float or ``(n_targets,)``.
      n_iter_: iterations run (int, or ``(n_targets,)``).
      dual_gap_: duality gap reached, in units of the objective divided by ``2 * sum(s)``.
      n_features_in_, feature_names_in_: as in scikit-learn.

    Example:
      >>> import numpy as np
      >>> from jaxreg.sklearn import Ridge
      >>> X = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]); y = np.array([0.0, 0.1, 1.0])
      >>> Ridge(alpha=1.0, tol=1e-10).fit(X, y).coef_.round(4).tolist()  # scikit-learn: 0.27142857
      [0.2714, 0.2714]
    """

    def __init__(
        self,
        alpha: Any = 1.0,
        *,
        fit_intercept: bool = True,
        max_iter: int = 10_000,
        tol: float = 1e-4,
        positive: bool = False,
        warm_start: bool = False,
        penalty_factor: Any = None,
    ) -> None:
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.positive = positive
        self.warm_start = warm_start
        self.penalty_factor = penalty_factor

    def _strength(self, n_targets: int, sw_sum: float) -> tuple[np.ndarray, float]:
        alpha = np.atleast_1d(np.asarray(self.alpha, dtype=float))
        if alpha.ndim != 1 or alpha.shape[0] not in (1, n_targets):
            raise ValueError(f"alpha must be a scalar or have shape (n_targets,) = ({n_targets},)")
        for a in alpha:
            _check_real("alpha", float(a))
        return np.broadcast_to(alpha, (n_targets,)) / sw_sum, 0.0


# -- classifiers -------------------------------------------------------------------------------


class _LinearClassifier(ClassifierMixin, BaseEstimator):
    """Shared prediction of the logistic classifiers from ``coef_``, ``intercept_`` and ``classes_``."""

    def decision_function(self, X: Any) -> np.ndarray:
        """``X @ coef_.T + intercept_``: ``(n_samples,)`` for two classes, else ``(n_samples, n_classes)``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_FLOATS, reset=False)
        z = X @ self.coef_.T + self.intercept_
        return z[:, 0] if z.shape[1] == 1 else z

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)`` in the order of ``classes_``."""
        z = self.decision_function(X)
        if z.ndim == 1:
            p1 = scipy.special.expit(z)
            return np.stack([1.0 - p1, p1], axis=1)
        return scipy.special.softmax(z, axis=1)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        z = self.decision_function(X)
        if z.ndim == 1:
            return np.stack([-np.logaddexp(0.0, z), -np.logaddexp(0.0, -z)], axis=1)
        return scipy.special.log_softmax(z, axis=1)

    def predict(self, X: Any) -> np.ndarray:
        """The class of largest decision value, from ``classes_``."""
        z = self.decision_function(X)
        idx = (z > 0).astype(int) if z.ndim == 1 else np.argmax(z, axis=1)
        return self.classes_[idx]

    def _encode(self, X: Any, y: Any, sample_weight: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Validate, set ``classes_``, and return ``X``, labels ``0..K-1`` and class-weighted ``s``."""
        X, y = validate_data(self, X, y, dtype=_FLOATS)
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes; the data contain only one "
                f"class: {self.classes_[0]!r}"
            )
        sw = _sample_weight(sample_weight, X.shape[0], X.dtype)
        if self.class_weight is not None:
            cw = compute_class_weight(self.class_weight, classes=self.classes_, y=y, sample_weight=sw)
            sw = sw * np.asarray(cw, X.dtype)[y_enc]
        present = np.unique(y_enc[sw > 0])
        if present.size < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes with positive weight; "
                "the weighted data contain one class only"
            )
        if present.size < self.classes_.size:
            missing = np.setdiff1d(self.classes_, self.classes_[present])
            raise ValueError(f"{type(self).__name__}: the classes {missing.tolist()} have zero total weight")
        return X, y_enc.astype(np.int32), sw

    def _loss(self) -> Any:
        K = self.classes_.size
        return LogisticLoss() if K == 2 else MultinomialLoss(n_classes=K)

    def _store(self, coef: np.ndarray, intercept: np.ndarray, p: int, dtype: Any) -> None:
        """Store jaxreg's ``(n_features[, K])`` solution as scikit-learn's ``coef_``, ``intercept_``."""
        coef = np.asarray(coef, dtype)[:p]
        intercept = np.asarray(intercept, dtype)
        if not self.fit_intercept:
            intercept = np.zeros_like(intercept)
        if coef.ndim == 1:
            self.coef_, self.intercept_ = coef[None, :], np.reshape(intercept, (1,)).astype(dtype)
        else:
            self.coef_, self.intercept_ = np.ascontiguousarray(coef.T), np.asarray(intercept, dtype)


class LogisticRegression(_LinearClassifier):
    r"""Logistic regression, binary or multinomial, with an elastic-net penalty, fit by FISTA.

    scikit-learn's ``LogisticRegression`` (parametrized by ``C`` and ``l1_ratio`` as from version 1.8).
    Minimizes over ``(W, b)``::

        C * sum_i s_i loss(y_i, x_i @ W + b)
            + sum_j f_j * (l1_ratio * |W_j| + (1 - l1_ratio) / 2 * ||W_j||**2)

    with ``loss`` the binary cross-entropy (two classes, one coefficient vector) or the softmax
    cross-entropy (``K > 2`` classes, ``W`` of shape ``(n_features, K)``, penalty summed over classes),
    sample weights ``s`` (default 1, times the class weights), penalty factors ``f = penalty_factor``
    (default 1).  This is jaxreg's mean loss with ``ElasticNet(alpha=1 / (C * sum(s)), l1_ratio)``;
    ``C=np.inf`` fits without penalty.

    Parameters:
      C: inverse penalty strength, ``> 0`` (``np.inf``: no penalty).
      l1_ratio: mixing in ``[0, 1]``: 0 is the L2 penalty (default), 1 the L1 penalty.
      tol: stop when the duality gap is at most ``tol`` times the null model's deviance (mean of
        ``2 * loss`` at the intercept-only fit).
      fit_intercept: fit the unpenalized intercept(s).
      class_weight: ``None``, ``"balanced"`` or a dict ``{label: weight}``; multiplies ``s``.
      max_iter: maximal number of FISTA iterations (default 10000).
      warm_start: start from the previous ``coef_`` when refitting.
      penalty_factor: ``(n_features,)`` non-negative per-feature factors ``f``; 0 = unpenalized.

    Attributes:
      classes_: ``(n_classes,)`` labels.
      coef_: ``(1, n_features)`` for two classes, else ``(n_classes, n_features)``.
      intercept_: ``(1,)`` or ``(n_classes,)`` (the multinomial intercepts sum to zero).
      n_iter_: ``(1,)`` iterations run.
      dual_gap_: duality gap reached, in units of jaxreg's mean-loss objective.
      n_features_in_, feature_names_in_: as in scikit-learn.

    Example:
      >>> from sklearn.datasets import load_iris
      >>> from jaxreg.sklearn import LogisticRegression
      >>> X, y = load_iris(return_X_y=True)
      >>> clf = LogisticRegression(C=1.0).fit(X, y)
      >>> clf.coef_.shape, clf.predict(X[:2]).tolist(), round(clf.score(X, y), 2)
      ((3, 4), [0, 0], 0.97)
    """

    def __init__(
        self,
        *,
        C: float = 1.0,
        l1_ratio: float = 0.0,
        tol: float = 1e-4,
        fit_intercept: bool = True,
        class_weight: Any = None,
        max_iter: int = 10_000,
        warm_start: bool = False,
        penalty_factor: Any = None,
    ) -> None:
        self.C = C
        self.l1_ratio = l1_ratio
        self.tol = tol
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.penalty_factor = penalty_factor

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LogisticRegression:
        """Fit the model to ``X (n_samples, n_features)`` and labels ``y (n_samples,)``; returns ``self``."""
        C = _check_real("C", self.C, open_low=True, allow_inf=True)
        l1_ratio = _check_real("l1_ratio", self.l1_ratio, 0.0, 1.0)
        tol = _check_real("tol", self.tol)
        max_iter = _check_max_iter(self.max_iter)
        prev = (getattr(self, "coef_", None), getattr(self, "intercept_", None))
        X, y, sw = self._encode(X, y, sample_weight)
        p = X.shape[1]
        pf = _penalty_factor(self.penalty_factor, p, X.dtype)
        alpha = 0.0 if np.isinf(C) else 1.0 / (C * float(np.sum(sw)))
        loss = self._loss()
        K = self.classes_.size
        data = _Padded(X, y, sw, pf)
        init = {}
        prev_coef, prev_intercept = prev
        if self.warm_start and prev_coef is not None and prev_coef.shape == ((1 if K == 2 else K), p):
            coef0, b0 = (prev_coef[0], prev_intercept[0]) if K == 2 else (prev_coef.T, prev_intercept)
            init = {"coef_init": data.coef_init(coef0), "intercept_init": b0}
        penalty = _ElasticNetPenalty(alpha=alpha, l1_ratio=l1_ratio, weights=data.pf)
        res = solve(
            data.X,
            data.y,
            loss,
            penalty,
            fit_intercept=bool(self.fit_intercept),
            sample_weight=data.sw,
            tol=tol,
            max_iter=max_iter,
            **init,
        )
        _check_status(self, res.status, res.gap, res.n_iter)
        self._store(res.coef, res.intercept, p, X.dtype)
        self.n_iter_ = np.asarray([int(res.n_iter)], dtype=np.int32)
        self.dual_gap_ = np.asarray(res.gap, X.dtype)[()]
        return self


# -- cross-validated estimators ----------------------------------------------------------------


def _cv_splits(cv: Any, X: np.ndarray, y: np.ndarray, classifier: bool, params: dict) -> _Splits:
    splitter = check_cv(cv, y, classifier=classifier)
    return _Splits(list(splitter.split(X, y, **params)))


class _SquaredLossCV(RegressorMixin, BaseEstimator):
    """Shared fit of LassoCV and ElasticNetCV: one call of :func:`jaxreg.cross_validate`."""

    def _l1_ratios(self) -> tuple[float | list[float], bool]:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **params: Any) -> Any:
        """Cross-validate the path on ``X (n_samples, n_features)``, ``y (n_samples,)``; return ``self``.

        ``params`` are passed to the splitter's ``split`` (e.g. ``groups``).
        """
        tol = _check_real("tol", self.tol)
        max_iter = _check_max_iter(self.max_iter)
        select = _check_select(self.select)
        eps = _check_real("eps", self.eps, 0.0, 1.0, open_low=True)
        rho, is_grid = self._l1_ratios()
        X, y = validate_data(self, X, y, dtype=_FLOATS, y_numeric=True)
        y = np.asarray(y, X.dtype)
        n, p = X.shape
        sw = _sample_weight(sample_weight, n, X.dtype)
        pf = _penalty_factor(self.penalty_factor, p, X.dtype)
        alphas = self.alphas
        if isinstance(alphas, numbers.Integral) and not isinstance(alphas, bool):
            if alphas < 1:
                raise ValueError(f"alphas as an int must be at least 1, got {alphas}")
            alphas = int(alphas)
            given = False
        else:
            alphas = np.asarray(alphas, dtype=float)
            if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas < 0):
                raise ValueError("alphas must be an int or a non-empty 1-D array of finite values >= 0")
            given = True
        splits = _cv_splits(self.cv, X, y, False, params)
        data = _Padded(X, y, sw, pf)
        penalty = _ElasticNetPenalty(
            alpha=1.0, l1_ratio=rho[0] if not is_grid else 1.0, weights=data.pf, positive=bool(self.positive)
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="the best alpha", category=UserWarning)
            cvr = cross_validate(
                data.X,
                data.y,
                SquaredLoss(),
                penalty,
                alphas=alphas,
                eps=eps,
                l1_ratios=rho if is_grid else None,
                cv=splits,
                scoring="mse",
                fit_intercept=bool(self.fit_intercept),
                sample_weight=data.sw,
                tol=tol,
                max_iter=max_iter,
            )
        path = _unpad_path(cvr.path, p, -1, X.dtype)
        grid = path.alphas.reshape(-1, path.alphas.shape[-1])  # (n_l1, n_alphas)
        pick = cvr.index_min if select == "min" else cvr.index_1se
        h, a = pick if is_grid else (0, pick)

        def at(arr: np.ndarray) -> Any:
            return arr[h, a] if is_grid else arr[a]

        _check_status(
            self,
            np.where(at(path.converged), Status.CONVERGED, Status.MAX_ITER),
            at(path.gap),
            at(path.n_iter),
            " (full-data fit at the chosen point)",
        )
        if not np.all(cvr.fold_converged):
            warnings.warn(
                f"{type(self).__name__}: {int(np.sum(~np.asarray(cvr.fold_converged)))} fold fits did not "
                f"reach tol={self.tol:g} within max_iter={self.max_iter}; their scores are approximate.",
                ConvergenceWarning,
                stacklevel=2,
            )
        scores = np.asarray(cvr.scores, X.dtype)  # (n_folds, [n_l1,] n_alphas)
        self.mse_path_ = np.squeeze(np.moveaxis(scores, 0, -1))
        self.alphas_ = grid[0] if (given or grid.shape[0] == 1) else grid
        self.alpha_ = float(grid[h, a])
        self.alpha_1se_ = float(grid[h, (cvr.index_1se[1] if is_grid else cvr.index_1se)])
        self.l1_ratio_ = float(rho[h])
        self.coef_ = at(path.coef)
        self.intercept_ = at(path.intercept)
        self.dual_gap_ = at(path.gap)
        self.n_iter_ = int(at(path.n_iter))
        self.path_ = path
        return self

    def predict(self, X: Any) -> np.ndarray:
        """``X @ coef_ + intercept_``: ``(n_samples,)``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_FLOATS, reset=False)
        return X @ self.coef_ + self.intercept_


class LassoCV(_SquaredLossCV):
    r"""Lasso with ``alpha`` chosen by K-fold cross-validation (scikit-learn's ``LassoCV``).

    All folds and alphas, and the full-data path that gives the final model, are fit in one compiled
    call of :func:`jaxreg.cross_validate`.  Each fold fits::

        1 / (2 * sum(s)) * sum_i s_i (y_i - x_i @ w - b)**2  +  alpha * sum_j f_j |w_j|

    on its training samples, on the alpha grid of the full data, and is scored by the (weighted) mean
    squared error on its held-out samples.  ``alpha_`` minimizes the mean over folds
    (``select="min"``), or is the largest alpha within one standard error of that minimum
    (``select="1se"``, the sparser model).

    Parameters:
      eps: ratio ``alpha_min / alpha_max`` of a generated grid.
      alphas: number of alphas of the grid from ``alpha_max`` down to ``eps * alpha_max``, or a 1-D array.
      fit_intercept, max_iter, tol, positive, penalty_factor: as in :class:`Lasso`.
      cv: ``None`` (5-fold), an int, a splitter or an iterable of (train, test) index pairs.
      select: ``"min"`` or ``"1se"``.

    Attributes:
      alpha_: the chosen alpha; alpha_1se_: the one-standard-error alpha.
      alphas_: ``(n_alphas,)`` the grid.
      mse_path_: ``(n_alphas, n_folds)`` held-out mean squared errors.
      coef_, intercept_, dual_gap_, n_iter_: the full-data fit at ``alpha_``.
      l1_ratio_: 1.0.
      path_: :class:`jaxreg.PathResult` (NumPy arrays) of the full-data path on ``alphas_``.
      n_features_in_, feature_names_in_: as in scikit-learn.

    Example:
      >>> import numpy as np
      >>> from jaxreg.sklearn import LassoCV
      >>> rng = np.random.default_rng(0)
      >>> X = rng.standard_normal((60, 6)); y = X[:, 0] - X[:, 1] + 0.3 * rng.standard_normal(60)
      >>> model = LassoCV(alphas=20, cv=3).fit(X, y)
      >>> model.mse_path_.shape, model.alpha_1se_ >= model.alpha_, np.flatnonzero(model.coef_)[:2].tolist()
      ((20, 3), True, [0, 1])
    """

    def __init__(
        self,
        *,
        eps: float = 1e-3,
        alphas: Any = 100,
        fit_intercept: bool = True,
        max_iter: int = 10_000,
        tol: float = 1e-4,
        cv: Any = None,
        positive: bool = False,
        penalty_factor: Any = None,
        select: str = "min",
    ) -> None:
        self.eps = eps
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.cv = cv
        self.positive = positive
        self.penalty_factor = penalty_factor
        self.select = select

    def _l1_ratios(self) -> tuple[list[float], bool]:
        return [1.0], False


class ElasticNetCV(_SquaredLossCV):
    r"""Elastic net with ``alpha`` and ``l1_ratio`` chosen by cross-validation (scikit-learn's ElasticNetCV).

    All folds, alphas and l1_ratios, and the full-data paths, are fit in one compiled call of
    :func:`jaxreg.cross_validate`.  Each fold fits::

        1 / (2 * sum(s)) * sum_i s_i (y_i - x_i @ w - b)**2
            + alpha * sum_j f_j * (l1_ratio * |w_j| + (1 - l1_ratio) / 2 * w_j**2)

    on its training samples and is scored by the (weighted) mean squared error on its held-out
    samples.  With a list of l1_ratios, each gets its own alpha grid (from its ``alpha_max``) unless
    ``alphas`` is an array.  ``(alpha_, l1_ratio_)`` minimize the mean over folds (``select="min"``);
    ``select="1se"`` takes, for the best l1_ratio, the largest alpha within one standard error.

    Parameters:
      l1_ratio: a float in ``[0, 1]`` or a list of them.
      eps, alphas, fit_intercept, max_iter, tol, cv, positive, penalty_factor, select: as in
        :class:`LassoCV` and :class:`ElasticNet`.

    Attributes:
      alpha_, alpha_1se_, l1_ratio_: the chosen hyper-parameters.
      alphas_: ``(n_alphas,)``, or ``(n_l1_ratio, n_alphas)`` for several l1_ratios and a generated grid.
      mse_path_: ``(n_alphas, n_folds)``, or ``(n_l1_ratio, n_alphas, n_folds)`` for several l1_ratios.
      coef_, intercept_, dual_gap_, n_iter_: the full-data fit at the chosen point.
      path_: :class:`jaxreg.PathResult` of the full-data paths.
      n_features_in_, feature_names_in_: as in scikit-learn.

    Example:
      >>> import numpy as np
      >>> from jaxreg.sklearn import ElasticNetCV
      >>> rng = np.random.default_rng(0)
      >>> X = rng.standard_normal((60, 6)); y = X[:, 0] - X[:, 1] + 0.3 * rng.standard_normal(60)
      >>> model = ElasticNetCV(l1_ratio=[0.5, 1.0], alphas=20, cv=3).fit(X, y)
      >>> model.mse_path_.shape, model.alphas_.shape, model.l1_ratio_ in (0.5, 1.0)
      ((2, 20, 3), (2, 20), True)
    """

    def __init__(
        self,
        *,
        l1_ratio: Any = 0.5,
        eps: float = 1e-3,
        alphas: Any = 100,
        fit_intercept: bool = True,
        max_iter: int = 10_000,
        tol: float = 1e-4,
        cv: Any = None,
        positive: bool = False,
        penalty_factor: Any = None,
        select: str = "min",
    ) -> None:
        self.l1_ratio = l1_ratio
        self.eps = eps
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.cv = cv
        self.positive = positive
        self.penalty_factor = penalty_factor
        self.select = select

    def _l1_ratios(self) -> tuple[list[float], bool]:
        is_grid = not isinstance(self.l1_ratio, numbers.Real)
        rho = np.atleast_1d(np.asarray(self.l1_ratio, dtype=float)).tolist() if is_grid else [self.l1_ratio]
        if not rho:
            raise ValueError("l1_ratio must not be empty")
        return [_check_real("l1_ratio", r, 0.0, 1.0) for r in rho], is_grid


_LOGISTIC_SCORINGS = {
    "neg_log_loss": "deviance",
    "accuracy": "misclassification",
    None: "misclassification",
    "roc_auc": "auc",
}


class LogisticRegressionCV(_LinearClassifier):
    r"""Logistic regression with ``C`` (and ``l1_ratio``) chosen by cross-validation.

    scikit-learn's ``LogisticRegressionCV`` (with ``use_legacy_attributes=False``).  For every fold,
    ``C`` in ``Cs`` and ``l1_ratio`` in ``l1_ratios`` it fits, on the fold's training samples,
    :class:`LogisticRegression`'s objective::

        C * sum_i s_i loss(y_i, x_i @ W + b)
            + sum_j f_j * (l1_ratio * |W_j| + (1 - l1_ratio) / 2 * ||W_j||**2)

    scores it on the held-out samples, chooses the best mean score, and takes the full-data fit at the
    chosen ``(C, l1_ratio)``.  Everything runs in one compiled call of :func:`jaxreg.cross_validate`
    (with ``fold_alphas="scaled"``, which keeps ``C`` fixed across folds of different weight).

    Parameters:
      Cs: an int (that many values from ``1e-4`` to ``1e4``, log-spaced) or a list of positive values.
      l1_ratios: the l1_ratios to try (default ``(0.0,)``: L2 penalty).
      fit_intercept, tol, max_iter, class_weight, penalty_factor: as in :class:`LogisticRegression`.
      cv: ``None`` (5-fold stratified), an int, a splitter or an iterable of (train, test) pairs.
      scoring: ``"neg_log_loss"`` (default, scikit-learn's default from 1.11), ``"accuracy"`` (or
        ``None``) or ``"roc_auc"`` (binary only), weighted by ``s``.
      select: ``"min"`` (best mean score) or ``"1se"`` (smallest ``C`` whose mean score is within one
        standard error of the best, same ``l1_ratio``).

    :meth:`score` reports ``scoring``, as scikit-learn's (not the accuracy of other classifiers).

    Attributes:
      classes_, coef_, intercept_, n_iter_, dual_gap_: the full-data fit at the chosen ``C_``.
      C_, l1_ratio_: the chosen values (floats); C_1se_: the one-standard-error ``C``.
      alpha_, alpha_1se_: the same as jaxreg strengths ``1 / (C * sum(s))``.
      Cs_: ``(n_cs,)`` sorted increasingly; l1_ratios_: ``(n_l1_ratios,)``.
      scores_: ``(n_folds, n_l1_ratios, n_cs)`` held-out scores (higher is better).
      path_: :class:`jaxreg.PathResult` of the full-data paths (alphas decreasing, i.e. ``Cs_`` increasing).
      n_features_in_, feature_names_in_: as in scikit-learn.

    Example:
      >>> from sklearn.datasets import load_breast_cancer
      >>> from sklearn.preprocessing import StandardScaler
      >>> from jaxreg.sklearn import LogisticRegressionCV
      >>> X, y = load_breast_cancer(return_X_y=True); X = StandardScaler().fit_transform(X)
      >>> clf = LogisticRegressionCV(Cs=5, cv=3).fit(X, y)
      >>> clf.scores_.shape, clf.C_ in clf.Cs_, bool(-0.2 < clf.score(X, y) < 0)  # neg_log_loss
      ((3, 1, 5), True, True)
    """

    def __init__(
        self,
        *,
        Cs: Any = 10,
        l1_ratios: Any = (0.0,),
        fit_intercept: bool = True,
        cv: Any = None,
        scoring: Any = "neg_log_loss",
        tol: float = 1e-4,
        max_iter: int = 10_000,
        class_weight: Any = None,
        penalty_factor: Any = None,
        select: str = "min",
    ) -> None:
        self.Cs = Cs
        self.l1_ratios = l1_ratios
        self.fit_intercept = fit_intercept
        self.cv = cv
        self.scoring = scoring
        self.tol = tol
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.penalty_factor = penalty_factor
        self.select = select

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **params: Any) -> LogisticRegressionCV:
        """Cross-validate ``Cs`` x ``l1_ratios`` on ``X``, ``y``; refit on all data; return ``self``.

        ``params`` are passed to the splitter's ``split`` (e.g. ``groups``).
        """
        tol = _check_real("tol", self.tol)
        max_iter = _check_max_iter(self.max_iter)
        select = _check_select(self.select)
        if self.scoring not in _LOGISTIC_SCORINGS:
            raise ValueError(
                f"scoring must be one of 'neg_log_loss', 'accuracy', 'roc_auc' or None, got {self.scoring!r}"
            )
        scoring = _LOGISTIC_SCORINGS[self.scoring]
        if isinstance(self.Cs, numbers.Integral) and not isinstance(self.Cs, bool):
            if self.Cs < 1:
                raise ValueError(f"Cs as an int must be at least 1, got {self.Cs}")
            Cs = np.logspace(-4, 4, int(self.Cs))
        else:
            Cs = np.asarray(self.Cs, dtype=float)
            if Cs.ndim != 1 or Cs.size == 0 or np.any(np.isnan(Cs)) or np.any(Cs <= 0):
                raise ValueError("Cs must be an int or a non-empty 1-D array of positive values")
        rho = np.atleast_1d(np.asarray(self.l1_ratios, dtype=float))
        if rho.ndim != 1 or rho.size == 0:
            raise ValueError("l1_ratios must be a non-empty 1-D array-like")
        for r in rho:
            _check_real("l1_ratios", float(r), 0.0, 1.0)
        X, y, sw = self._encode(X, y, sample_weight)
        p = X.shape[1]
        K = self.classes_.size
        if scoring == "auc" and K > 2:
            raise ValueError("scoring='roc_auc' needs two classes")
        pf = _penalty_factor(self.penalty_factor, p, X.dtype)
        sw_sum = float(np.sum(sw))
        Cs = np.sort(Cs)
        alphas = np.where(np.isinf(Cs), 0.0, 1.0 / (Cs * sw_sum))
        splits = _cv_splits(self.cv, X, y, True, params)
        for k, (train, _) in enumerate(splits.splits):
            seen = np.unique(y[train][sw[train] > 0])
            if seen.size < K:
                missing = np.setdiff1d(self.classes_, self.classes_[seen]).tolist()
                raise ValueError(
                    f"{type(self).__name__}: the training set of fold {k} has no sample of the classes "
                    f"{missing}; use a stratified splitter or fewer folds"
                )
        data = _Padded(X, y, sw, pf)
        penalty = _ElasticNetPenalty(alpha=1.0, l1_ratio=1.0, weights=data.pf)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="the best alpha", category=UserWarning)
            cvr = cross_validate(
                data.X,
                data.y,
                self._loss(),
                penalty,
                alphas=alphas,
                l1_ratios=rho,
                cv=splits,
                scoring=scoring,
                fit_intercept=bool(self.fit_intercept),
                sample_weight=data.sw,
                tol=tol,
                max_iter=max_iter,
                fold_alphas="scaled",
            )
        path = _unpad_path(cvr.path, p, -1 if K == 2 else -2, X.dtype)
        h, a = cvr.index_min if select == "min" else cvr.index_1se
        _check_status(
            self,
            np.where(path.converged[h, a], Status.CONVERGED, Status.MAX_ITER),
            path.gap[h, a],
            path.n_iter[h, a],
            " (full-data fit at the chosen point)",
        )
        if not np.all(cvr.fold_converged):
            warnings.warn(
                f"{type(self).__name__}: {int(np.sum(~np.asarray(cvr.fold_converged)))} fold fits did not "
                f"reach tol={self.tol:g} within max_iter={self.max_iter}; their scores are approximate.",
                ConvergenceWarning,
                stacklevel=2,
            )
        scores = np.asarray(cvr.scores, X.dtype)  # (n_folds, n_l1, n_cs), lower is better but auc
        self.scores_ = {"deviance": -0.5 * scores, "misclassification": 1.0 - scores, "auc": scores}[scoring]
        grid = np.asarray(path.alphas)
        a_1se = cvr.index_1se[1]
        self.Cs_ = Cs
        self.l1_ratios_ = rho
        self.C_ = float(Cs[a])
        self.C_1se_ = float(Cs[a_1se])
        self.alpha_ = float(grid[h, a])
        self.alpha_1se_ = float(grid[h, a_1se])
        self.l1_ratio_ = float(rho[h])
        self._store(path.coef[h, a], path.intercept[h, a], p, X.dtype)
        self.n_iter_ = np.asarray([int(path.n_iter[h, a])], dtype=np.int32)
        self.dual_gap_ = np.asarray(path.gap[h, a], X.dtype)[()]
        self.path_ = path
        return self

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """``scoring`` of the model on ``X``, ``y`` (accuracy for ``scoring=None``), as scikit-learn's."""
        scorer = get_scorer("accuracy" if self.scoring is None else self.scoring)
        return float(scorer(self, X, y, sample_weight=sample_weight))
