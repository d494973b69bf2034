"""Cross-validation over folds x alphas x l1_ratios, the folds fit in parallel.

Folds are sample-weight masks: fold ``k`` trains on the samples outside it by giving its own samples
weight 0, so ``X`` is never copied per fold.  The paths of every fold, every l1_ratio and of the
full data set (used for the final coefficients, as glmnet does) are independent: on an accelerator
they run as lanes of the same batched solve in one compiled program, over several devices they are
sharded, and on a CPU they run on host threads, one path per call of one compiled path program
(``threads``; see :func:`jaxreg.path.path_threads`).
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _validation as V
from . import path as _path
from . import solvers as S
from ._precision import compiled
from .losses import LogisticLoss, Loss, MultinomialLoss, PoissonLoss, SquaredLoss
from .penalties import L1, Penalty, check_penalty

__all__ = ["cross_validate", "CVResult", "fold_masks", "SCORINGS"]

Array = jax.Array

#: scorings per loss; the first is the default. ``auc`` is maximized, the others minimized.
SCORINGS: dict[type, tuple[str, ...]] = {
    SquaredLoss: ("mse", "mae"),
    LogisticLoss: ("deviance", "misclassification", "auc", "mse"),
    PoissonLoss: ("deviance", "mse", "mae"),
    MultinomialLoss: ("deviance", "misclassification"),
}
_DEFAULT_SCORINGS = ("mse", "mae", "deviance")
_MAXIMIZED = ("auc",)


class CVResult(NamedTuple):
    """Cross-validation results.

    Attributes:
      alphas: ``(n_alphas,)`` or ``(n_l1_ratios, n_alphas)``.
      l1_ratios: ``(n_l1_ratios,)`` or ``None``.
      scoring: name of the score used to choose alpha.
      scores: ``(n_folds,) + alphas.shape`` held-out score of every fold and alpha.
      mean, stderr: ``alphas.shape``; ``stderr = std(scores, ddof=1) / sqrt(n_folds)``.
      alpha_min: the alpha of the best mean score; ``l1_ratio``: its l1_ratio (or ``None``).
      alpha_1se: the largest alpha (same l1_ratio) whose mean is within one stderr of the best.
      index_min, index_1se: their positions in ``alphas`` (a tuple with an l1_ratio axis).
      coef, intercept: the full-data solution at ``alpha_min``; ``coef_1se``, ``intercept_1se`` at
        ``alpha_1se``.
      path: the full-data :class:`~jaxreg.PathResult` on the same grid.
      fold_converged: ``(n_folds,) + alphas.shape``, whether each fold's fit converged.
    """

    alphas: Array
    l1_ratios: Array | None
    scoring: str
    scores: Array
    mean: Array
    stderr: Array
    alpha_min: float
    alpha_1se: float
    l1_ratio: float | None
    index_min: Any
    index_1se: Any
    coef: Array
    intercept: Array
    coef_1se: Array
    intercept_1se: Array
    path: _path.PathResult
    fold_converged: Array


def fold_masks(cv: Any, n_samples: int, X: Any = None, y: Any = None, shuffle: bool = False,
               random_state: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Train and test masks ``(n_folds, n_samples)`` (booleans) from ``cv``.

    ``cv`` is an int ``K`` (K-fold: consecutive folds, the first ``n % K`` one sample larger, as
    scikit-learn's ``KFold``; ``shuffle`` permutes the samples first with ``random_state``), an array
    of fold ids of length ``n_samples`` (glmnet's ``foldid``), or an object with a scikit-learn
    ``split(X, y)`` method.

    Example:
      >>> from jaxreg.cv import fold_masks
      >>> train, test = fold_masks(3, 7)
      >>> test.astype(int).tolist()
      [[1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 1, 1]]
    """
    if hasattr(cv, "split"):
        test = []
        train = []
        for tr, te in cv.split(np.zeros((n_samples, 1)) if X is None else X, y):
            m_tr = np.zeros(n_samples, bool)
            m_te = np.zeros(n_samples, bool)
            m_tr[np.asarray(tr)] = True
            m_te[np.asarray(te)] = True
            train.append(m_tr)
            test.append(m_te)
        if len(test) < 2:
            raise ValueError("cv splitter produced fewer than 2 splits")
        return np.array(train), np.array(test)
    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        k = int(cv)
        if not 2 <= k <= n_samples:
            raise ValueError(f"cv={k} folds needs 2 <= cv <= n_samples={n_samples}")
        order = np.arange(n_samples)
        if shuffle:
            order = np.random.default_rng(random_state).permutation(n_samples)
        sizes = np.full(k, n_samples // k)
        sizes[: n_samples % k] += 1
        ids = np.empty(n_samples, int)
        ids[order] = np.repeat(np.arange(k), sizes)
    else:
        ids = np.asarray(cv)
        if ids.shape != (n_samples,):
            raise ValueError(f"cv as fold ids must have shape (n_samples,) = ({n_samples},), got {ids.shape}")
    folds = np.unique(ids)
    if folds.size < 2:
        raise ValueError("cv fold ids define fewer than 2 folds")
    test = ids[None, :] == folds[:, None]
    return ~test, test


def _auc(z: Array, y: Array, w: Array) -> Array:
    """Weighted area under the ROC curve of scores ``z`` for labels ``y``; ties count one half."""
    order = jnp.argsort(z)
    zs, ys, ws = z[order], y[order], w[order]
    neg = jnp.concatenate([jnp.zeros(1, w.dtype), jnp.cumsum(ws * (1 - ys))])
    lo = neg[jnp.searchsorted(zs, zs, side="left")]
    hi = neg[jnp.searchsorted(zs, zs, side="right")]
    pos_w = ws * ys
    total = jnp.sum(pos_w) * neg[-1]
    return jnp.sum(pos_w * 0.5 * (lo + hi)) / total


def _score(name: str, loss: Loss, y: Array, Z: Array, t: Array) -> Array:
    """Held-out score per lane: ``Z (n, B, K)``, test weights ``t (n, B)`` summing to one."""
    if name == "deviance":
        return 2.0 * jnp.sum(t * loss._value(y, Z), axis=0)
    if name == "misclassification":
        if loss.n_outputs > 1:
            wrong = jnp.argmax(Z, axis=-1) != y[:, None]
        else:
            wrong = (Z[..., 0] > 0) != (y[:, None] > 0.5)
        return jnp.sum(t * wrong, axis=0)
    if name == "auc":
        return jax.vmap(_auc, in_axes=(1, None, 1))(Z[..., 0], y, t)
    mean = jax.nn.sigmoid(Z[..., 0]) if isinstance(loss, LogisticLoss) else Z[..., 0]
    if isinstance(loss, PoissonLoss):
        mean = jnp.exp(Z[..., 0])
    err = y[:, None] - mean
    if name == "mse":
        return jnp.sum(t * err**2, axis=0)
    if name == "mae":
        return jnp.sum(t * jnp.abs(err), axis=0)
    raise ValueError(f"unknown scoring {name!r}")


def cross_validate(
    X: ArrayLike,
    y: ArrayLike,
    loss: Loss | None = None,
    penalty: Penalty | None = None,
    *,
    alphas: int | ArrayLike = 100,
    eps: float = 1e-3,
    l1_ratios: ArrayLike | None = None,
    cv: Any = 5,
    shuffle: bool = False,
    random_state: int | None = None,
    scoring: str | None = None,
    fit_intercept: bool = True,
    sample_weight: ArrayLike | None = None,
    tol: float = 1e-4,
    max_iter: int = 10_000,
    block_size: int | str | None = "auto",
    check_every: int = 10,
    devices: int | str = "all",
    shard: str = "paths",
    fold_alphas: str = "same",
    threads: int | str = "auto",
) -> CVResult:
    r"""K-fold cross-validation of a regularization path, the folds fit in parallel (see ``threads``).

    Every fold fits the path on its training samples (the held-out samples get weight 0) on the
    alpha grid of the full data (as scikit-learn's ``LassoCV``), and is scored on its held-out
    samples, weighted by ``sample_weight``.  ``mean`` and ``stderr`` over folds give ``alpha_min``
    (best mean) and ``alpha_1se`` (the largest alpha within one standard error of it: the sparser
    model).  A warning is issued when the best alpha lies on the edge of the grid.

    Args:
      X, y, loss, penalty, alphas, eps, l1_ratios, fit_intercept, sample_weight, tol, max_iter,
        block_size, check_every, devices, shard: as in :func:`jaxreg.path`.
      cv: number of folds, array of fold ids, or a scikit-learn splitter (see :func:`fold_masks`).
      shuffle, random_state: shuffle samples before K-fold splitting (int ``cv`` only).
      scoring: one of ``SCORINGS[type(loss)]``: ``"mse"``, ``"mae"``, ``"deviance"``,
        ``"misclassification"``, ``"auc"`` (maximized); default: the first for the loss.
      fold_alphas: ``"same"`` (default): every fold is fit with the grid's alphas, so the penalty
        keeps its weight against the *mean* training loss (scikit-learn's ``LassoCV``, glmnet).
        ``"scaled"``: fold ``k`` is fit with ``alpha * sum(s) / sum(s over its training samples)``,
        so the penalty keeps its weight against the *summed* loss (scikit-learn's
        ``LogisticRegressionCV``, whose ``C = 1 / (alpha * sum(s))`` is fixed across folds).
        The reported alphas are the full-data ones either way.
      threads: host threads that fit the independent paths (the full data's and each fold's, per
        l1_ratio) at once, each path a call of the same compiled program: ``"auto"`` (default) uses
        one per core on a CPU, and 1 (one program for all paths) on accelerators, which batch the
        paths as lanes; always 1 where several devices share the work.  On a 2-core CPU two
        threads made the 5-fold CV of the wide benchmark 1.6x faster.

    Returns:
      :class:`CVResult`.

    Raises:
      ValueError: naming the fold (its index along ``scores``) when a fold has no training or no
        held-out sample of positive weight, when the training samples of a ``LogisticLoss`` or
        ``MultinomialLoss`` fold miss a class (the class is named), when a fold's training targets do
        not suit the loss, or when ``scoring="auc"`` holds out a single class.  Checked once, before
        anything is compiled.

    Example:
      >>> import numpy as np, jaxreg as jr
      >>> rng = np.random.default_rng(0)
      >>> X = rng.standard_normal((60, 10)); y = X[:, 0] + 0.5 * rng.standard_normal(60)
      >>> cvr = jr.cross_validate(X, y, alphas=20, cv=3)
      >>> cvr.scores.shape, bool(cvr.alpha_1se >= cvr.alpha_min)
      ((3, 20), True)
    """
    loss = SquaredLoss() if loss is None else loss
    penalty = L1() if penalty is None else penalty
    X_in = X
    X, y, s, loss = S.prepare_data(X, y, loss, sample_weight)
    V.check_tol_max_iter(tol, max_iter, X.dtype)
    n, p = X.shape
    check_penalty(penalty, p)
    choices = SCORINGS.get(type(loss), _DEFAULT_SCORINGS)
    scoring = choices[0] if scoring is None else scoring
    if scoring not in choices:
        raise ValueError(f"scoring must be one of {choices} for {type(loss).__name__}, got {scoring!r}")
    train, test = fold_masks(cv, n, X_in, np.asarray(y), shuffle, random_state)
    F = train.shape[0]
    sw = np.asarray(s)
    _check_folds(loss, np.asarray(y), sw, train, test, scoring)
    tr_w = train * sw[None]
    te_w = test * sw[None]
    if fold_alphas not in ("same", "scaled"):
        raise ValueError(f"fold_alphas must be 'same' or 'scaled', got {fold_alphas!r}")
    unit, rho = _path._unit_with_l1_ratios(penalty, l1_ratios, p, X.dtype)
    mode = S._intercept_mode(loss, fit_intercept)
    grid = _path._resolve_alphas(alphas, eps, X, y, s, loss, unit, mode)  # (H, A)
    H, A = grid.shape
    cfg = _path._path_config(A, block_size, True, mode, max_iter, check_every, S.capacities(penalty, n, p),
                             S.uses_gram(loss, mode, n, p), S.mixed_precision(X.dtype, tol, (n, p)))  # fmt: skip
    # Paths: column 0 is the full data, columns 1..F the folds; each repeated per l1_ratio.
    cols = np.concatenate([sw[:, None], (tr_w / tr_w.sum(1, keepdims=True)).T], axis=1)  # (n, F + 1)
    s_host = np.repeat(cols, H, axis=1).astype(X.dtype)  # (n, (F + 1) * H)
    s_paths = V.to_device(s_host)

    def tile(a: Array) -> Array:  # concrete leaves are tiled on the host (V.to_device): no compiled op
        host, reps = V.concrete(a), (F + 1,) + (1,) * (a.ndim - 1)
        return jnp.tile(a, reps) if host is None else V.to_device(np.tile(host, reps))

    unit_paths = jax.tree_util.tree_map(tile, unit)
    grid_paths = np.tile(np.asarray(grid), (F + 1, 1))
    if fold_alphas == "scaled":
        factor = np.repeat(np.concatenate([[1.0], 1.0 / tr_w.sum(1)]), H)  # s sums to one
        grid_paths = grid_paths * factor[:, None]
    grid_paths = V.to_device(grid_paths, X.dtype)
    tests = V.to_device(np.repeat((te_w / te_w.sum(1, keepdims=True)).T, H * A, axis=1), X.dtype)
    n_dev = _path.n_devices_for(devices)
    _path.check_shard(shard)
    n_threads = _path.path_threads(s_paths.shape[1], n_dev, threads)  # before rows sharding sets n_dev to 1
    if shard == "rows":
        X, y, s_paths, tests = _path.shard_rows(n_dev, X, y, s_paths, tests)
        n_dev = 1
    tol_ = V.to_device(tol, X.dtype)
    host = _path.host_paths(s_host, unit_paths, grid_paths, (X, y)) if n_threads > 1 else None
    if host is not None:  # one path per call on host threads, then a program gathers them
        parts = tuple(_path.threaded_paths(X, y, host, loss, tol_, cfg, n_threads))
        out = _cv_finish(X, y, parts, loss, tests, scoring, grid, rho, bool(fit_intercept))
    else:
        out = S.with_fallback(
            lambda fb: _cv_program(X, y, s_paths, loss, unit_paths, grid_paths, tol_, tests,
                                   _path._fallback(cfg, fb), scoring, n_dev, grid, rho, bool(fit_intercept)),
            cfg.solver, (X, y, s_paths, unit_paths, grid_paths, penalty), lambda o: o[3],
        )  # fmt: skip
    full_path, folds_conv, scores, _, chosen, picks = out
    scores = np.asarray(scores).reshape(F, H, A)
    folds_conv = np.asarray(folds_conv).reshape(F, H, A)
    return _summarize(scores, grid, rho, scoring, full_path, folds_conv, chosen, picks)


def _check_folds(loss: Loss, y: np.ndarray, sw: np.ndarray, train: np.ndarray, test: np.ndarray,
                 scoring: str) -> None:
    """Raise ``ValueError`` naming the first fold (index into ``scores``) that cannot be fit or scored.

    Every fold needs a training sample and a held-out sample of positive weight; the training samples
    of a classification loss must hold every class (otherwise that class' intercept is infinite, as
    scikit-learn's ``LogisticRegressionCV`` refuses too); the targets a fold trains on must suit the
    loss (``check_target``: e.g. not all zero for Poisson); ``auc`` needs both classes held out.
    """
    F = train.shape[0]
    if isinstance(loss, LogisticLoss):
        classes = np.array([0, 1])
    elif isinstance(loss, MultinomialLoss):
        classes = np.arange(loss.n_classes)
    else:
        classes = None
    for k in range(F):
        tr = train[k] & (sw > 0)
        te = test[k] & (sw > 0)
        where = f"cross-validation fold {k} (of {F})"
        if not tr.any():
            raise ValueError(f"{where} has no training sample with positive weight")
        if not te.any():
            raise ValueError(f"{where} has no held-out sample with positive weight")
        if classes is not None:
            missing = np.setdiff1d(classes, y[tr])
            if missing.size:
                raise ValueError(
                    f"the training set of {where} has no sample of class(es) {missing.astype(int).tolist()}; "
                    f"{type(loss).__name__} needs every class in every training set: use stratified folds "
                    "(e.g. sklearn.model_selection.StratifiedKFold) or fewer folds"
                )
        else:
            try:
                loss.check_target(y[tr])
            except ValueError as exc:
                raise ValueError(f"the training set of {where}: {exc}") from None
        if scoring == "auc" and np.unique(y[te]).size < 2:
            raise ValueError(
                f"the held-out set of {where} holds a single class, so its auc is undefined; use stratified "
                "folds or another scoring"
            )


def _choose(scores: Array, maximize: bool) -> tuple[Array, Array, Array, Array, Array]:
    """Mean and standard error over the folds of ``scores (F, H, A)``, the best ``(h, a)`` and ``a_1se``.

    A fold whose fit went non-finite scores NaN: such an alpha can never be the best one.  Alphas
    decrease along ``A``: the first within one standard error of the best is the largest.
    """
    F = scores.shape[0]
    mean = jnp.mean(scores, axis=0)
    stderr = jnp.std(scores, axis=0, ddof=1) / np.sqrt(F)
    loss_mean = jnp.where(jnp.isfinite(mean), -mean if maximize else mean, jnp.inf)
    h, a = jnp.unravel_index(jnp.argmin(loss_mean), mean.shape)
    a_1se = jnp.argmax(loss_mean[h] <= loss_mean[h, a] + stderr[h, a])
    return mean, stderr, h, a, a_1se


def _cv_program_impl(
    X: Array, y: Array, s: Array, loss: Loss, unit: Penalty, grid_paths: Array, tol: Array, tests: Array,
    cfg: Any, scoring: str, n_devices: int, grid: Array, rho: Array | None, fit_intercept: bool,
) -> tuple[_path.PathResult, Array, Array, Array, tuple[Array, ...], tuple[Array, ...]]:
    """The paths, then :func:`_cv_results` of them."""
    out = _path._paths(X, y, s, loss, unit, grid_paths, tol, cfg, n_devices)
    return _cv_results(X, y, out, loss, tests, scoring, grid, rho, fit_intercept)


def _cv_results(
    X: Array, y: Array, out: _path._PathOut, loss: Loss, tests: Array, scoring: str, grid: Array,
    rho: Array | None, fit_intercept: bool,
) -> tuple[_path.PathResult, Array, Array, Array, tuple[Array, ...], tuple[Array, ...]]:
    """From the lanes ``out`` of the paths: the full data's (its first ``grid.size`` lanes) as a
    :class:`~jaxreg.PathResult`, whether each fold's lane converged, the held-out scores of the folds'
    lanes, every lane's status, :func:`_choose` of the scores, and the full data's coefficients and
    intercepts at ``(h, a)`` and ``(h, a_1se)``."""
    H_A = tests.shape[1]
    fold_W = out.W[:, -H_A:]
    Z = S.matmul(X, fold_W) + out.b[-H_A:][None]
    G = grid.size
    full = _path._PathOut(out.W[:, :G], out.b[:G], out.n_iter[:G], out.crit[:G], out.status[:G])
    full_path = _path._path_result(full, grid, rho, loss, fit_intercept)
    scores = _score(scoring, loss, y, Z, tests)
    chosen = _choose(scores.reshape((-1,) + grid.shape), scoring in _MAXIMIZED)
    h, a, a_1se = chosen[2:]
    lead = 1 if rho is None else 2  # the grid axes of the path's coef and intercept
    coef = full_path.coef.reshape((-1,) + full_path.coef.shape[lead:])
    b = full_path.intercept.reshape((-1,) + full_path.intercept.shape[lead:])
    A = grid.shape[1]
    picks = (coef[h * A + a], b[h * A + a], coef[h * A + a_1se], b[h * A + a_1se])
    return full_path, out.status[G:] == S.Status.CONVERGED, scores, out.status, chosen, picks


_cv_program = compiled(static_argnames=("cfg", "scoring", "n_devices", "fit_intercept"))(_cv_program_impl)


@compiled(static_argnames=("scoring", "fit_intercept"))
def _cv_finish(
    X: Array, y: Array, parts: tuple[_path._PathOut, ...], loss: Loss, tests: Array, scoring: str, grid: Array,
    rho: Array | None, fit_intercept: bool,
) -> tuple[_path.PathResult, Array, Array, Array, tuple[Array, ...], tuple[Array, ...]]:
    """:func:`_cv_results` of paths fit one per call (:func:`jaxreg.path.threaded_paths`)."""
    return _cv_results(X, y, _path.join_paths(parts), loss, tests, scoring, grid, rho, fit_intercept)


def _summarize(
    scores: np.ndarray, grid: Array, rho: Array | None, scoring: str, full: _path.PathResult,
    folds_conv: np.ndarray, chosen: tuple[Array, ...], picks: tuple[Array, ...],
) -> CVResult:
    mean, stderr = np.asarray(chosen[0]), np.asarray(chosen[1])  # (H, A)
    h, a, a_1se = (int(i) for i in chosen[2:])
    if not np.any(np.isfinite(mean)):
        raise ValueError("every cross-validation score is non-finite; check the data and the loss")
    grid_np = np.asarray(grid)
    if a in (0, grid_np.shape[1] - 1) and grid_np.shape[1] > 1:
        where = "largest" if a == 0 else "smallest"
        warnings.warn(
            f"the best alpha ({grid_np[h, a]:.4g}) is the {where} of the grid; widen the grid",
            UserWarning,
            stacklevel=3,
        )
    c_min, b_min, c_1se, b_1se = picks
    squeeze = (lambda x: x[0]) if rho is None else (lambda x: x)  # noqa: E731
    return CVResult(
        alphas=full.alphas,
        l1_ratios=rho,
        scoring=scoring,
        scores=scores if rho is not None else scores[:, 0],
        mean=squeeze(mean),
        stderr=squeeze(stderr),
        alpha_min=float(grid_np[h, a]),
        alpha_1se=float(grid_np[h, a_1se]),
        l1_ratio=None if rho is None else float(np.asarray(rho)[h]),
        index_min=a if rho is None else (h, a),
        index_1se=a_1se if rho is None else (h, a_1se),
        coef=c_min,
        intercept=b_min,
        coef_1se=c_1se,
        intercept_1se=b_1se,
        path=full,
        fold_converged=folds_conv if rho is not None else folds_conv[:, 0],
    )
