"""Penalties: L1, L2, elastic net and group lasso as frozen pytree dataclasses.

Every penalty ``g`` follows scikit-learn's scaling (see ``DESIGN.md``)::

    L1(alpha)                g(w) = alpha * sum_j weights_j * |w_j|
    L2(alpha)                g(w) = alpha / 2 * sum_j weights_j * w_j**2
    ElasticNet(alpha, rho)   g(w) = alpha * sum_j weights_j * (rho * |w_j| + (1 - rho) / 2 * w_j**2)
    GroupLasso(alpha, groups) g(w) = alpha * sum_g weights_g * sqrt(|g|) * ||w_g||_2

``weights`` are per-feature (per-group for :class:`GroupLasso`) penalty factors, glmnet's
``penalty.factor``: a weight of 0 leaves that feature unpenalized.  ``alpha``, ``l1_ratio`` and
``weights`` are pytree *leaves*: they can be traced, vmapped and differentiated, and a new value never
recompiles.  Structural options (``positive``, ``groups``) are static.

A coefficient array ``w`` has shape ``(n_features,)`` or ``(n_features, n_outputs)``; feature weights
and groups index its first axis, so for a multinomial model an :class:`L1` penalty acts entry-wise and a
:class:`GroupLasso` with one group per feature is glmnet's grouped multinomial lasso.

``value`` and ``prox`` also take any pytree of arrays (the parameters of a neural network, a dict of
weight matrices): ``value`` is the sum of the values of the leaves and ``prox`` acts leaf by leaf, with
``step`` a scalar or a pytree of per-coordinate steps (see :meth:`Penalty.prox`).  Weights and groups
then apply to every leaf (a :class:`GroupLasso` along its ``axis``).  :func:`tree_value` and
:func:`tree_prox` do the same for a pytree of penalties matching the parameters, ``None`` marking an
unpenalized leaf.

Besides ``value`` and ``prox``, each penalty exposes what path and gap computations need:
``critical_alpha(v)`` (the smallest ``alpha`` for which ``w = 0`` is optimal when the loss gradient at
``w = 0`` is ``-v``) and ``dual(v)`` (a scaling ``c`` in ``(0, 1]`` that makes ``c * v`` dual feasible,
and the convex conjugate ``g*(c * v)``).
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _validation as V

__all__ = ["Penalty", "L1", "L2", "ElasticNet", "GroupLasso", "tree_value", "tree_prox"]

Array = jax.Array


def _static(default: Any) -> Any:
    return dataclasses.field(default=default, metadata={"static": True})


def _pytree_dataclass(cls: type) -> type:
    """A frozen dataclass registered as a pytree: static fields (``_static``) are aux data, the rest leaves.

    The class itself is part of the aux data.  With ``jax.tree_util.register_dataclass`` the tree
    structures of two classes with the same fields compared equal (jax 0.10: ``PoissonLoss()`` and
    ``LogisticLoss()``, which have none), so a compiled function cached for one could run for the
    other when their hashes met: rarely, and differently in every process.
    """
    cls = dataclasses.dataclass(frozen=True)(cls)
    fields = dataclasses.fields(cls)
    data = tuple(f.name for f in fields if not f.metadata.get("static", False))
    meta = tuple(f.name for f in fields if f.metadata.get("static", False))

    def aux(obj: Any) -> tuple[type, tuple[Any, ...]]:
        return cls, tuple(getattr(obj, name) for name in meta)

    def flatten_with_keys(obj: Any) -> tuple[list[tuple[Any, Any]], tuple[type, tuple[Any, ...]]]:
        return [(jax.tree_util.GetAttrKey(name), getattr(obj, name)) for name in data], aux(obj)

    def flatten(obj: Any) -> tuple[list[Any], tuple[type, tuple[Any, ...]]]:
        return [getattr(obj, name) for name in data], aux(obj)

    def unflatten(aux_data: tuple[type, tuple[Any, ...]], children: Any) -> Any:
        return cls(**dict(zip(data, children, strict=True)), **dict(zip(meta, aux_data[1], strict=True)))

    jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)
    return cls


def _rows(a: Array, w: Array) -> Array:
    """Broadcast a per-feature array ``a`` of shape ``(n_features,)`` against ``w``'s first axis."""
    return jnp.reshape(a, a.shape + (1,) * (w.ndim - a.ndim))


def _soft_threshold(x: Array, thresh: Array, positive: bool) -> Array:
    if positive:
        return jnp.maximum(x - thresh, 0.0)
    return jnp.sign(x) * jnp.maximum(jnp.abs(x) - thresh, 0.0)


def _safe_divide(num: Array, den: Array) -> Array:
    """``num / den`` where ``den > 0``, else 0; finite derivatives everywhere."""
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), 0.0)


def _is_leaf(w: Any) -> bool:
    leaves = jax.tree_util.tree_leaves(w)
    return len(leaves) == 1 and leaves[0] is w


def _leafwise_value(method: Callable[[Any, Array], Array]) -> Callable[[Any, Any], Array]:
    """Extend ``value(w)`` from one array to a pytree of arrays: the sum over the leaves."""

    @functools.wraps(method)
    def value(self: Penalty, w: Any) -> Array:
        if _is_leaf(w):
            return method(self, jnp.atleast_1d(w))
        leaves = [self._check_leaf(jnp.atleast_1d(x)) for x in jax.tree_util.tree_leaves(w)]
        parts = [method(self, x) for x in leaves]
        return functools.reduce(operator.add, parts) if parts else jnp.asarray(0.0)

    return value


def _leafwise_prox(method: Callable[[Any, Array, Any], Array]) -> Callable[[Any, Any, Any], Any]:
    """Extend ``prox(w, step)`` to a pytree ``w``: leaf by leaf, ``step`` shared or a matching pytree."""

    def on_leaf(self: Penalty, x: Any, step: Any, check: bool) -> Array:
        x = jnp.asarray(x)
        if check:
            self._check_leaf(jnp.atleast_1d(x))
        if x.ndim:
            return method(self, x, step)
        # a 0-d parameter is one coordinate; its per-coordinate step is 0-d too
        return jnp.reshape(method(self, jnp.reshape(x, (1,)), step), ())

    @functools.wraps(method)
    def prox(self: Penalty, w: Any, step: Any) -> Any:
        if _is_leaf(w):
            return on_leaf(self, w, step, check=False)
        if _is_leaf(step):
            return jax.tree_util.tree_map(lambda x: on_leaf(self, x, step, check=True), w)
        return jax.tree_util.tree_map(lambda x, st: on_leaf(self, x, st, check=True), w, step)

    return prox


class Penalty:
    """Base class of penalties. Subclasses are frozen pytree dataclasses.

    Leaves whose shape has more leading axes than the unbatched leaf carry a batch of penalties
    (``L1(alpha=jnp.array([1.0, 0.1]))``); :func:`jaxreg.solve` fits all of them in one call.

    ``value(w)`` and ``prox(w, step)`` take an array or any pytree of arrays ``w``:

    - ``value(w) = sum over leaves x of g(x)``;
    - ``prox(w, step) = argmin_z sum_j (z_j - w_j)**2 / (2 * step_j) + value(z)``, computed leaf by
      leaf.  ``step`` is a positive scalar (``step_j = step``, the Euclidean prox) or, for a diagonal
      metric, an array (a pytree) of the shape (structure) of ``w`` with one step per coordinate.
    """

    #: number of trailing axes of each leaf in one (unbatched) penalty
    _leaf_ndim: dict[str, int] = {}

    def value(self, w: ArrayLike) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def prox(self, w: ArrayLike, step: ArrayLike) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def critical_alpha(self, v: ArrayLike) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def dual(self, v: ArrayLike) -> tuple[Array, Array]:  # pragma: no cover - abstract
        raise NotImplementedError

    def unpenalized(self, w: ArrayLike) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- batching helpers -------------------------------------------------------------------

    def _leaves(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._leaf_ndim}

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Shape of the batch of penalties this object holds (``()`` for a single penalty)."""
        shapes = []
        for name, nd in self._leaf_ndim.items():
            leaf = getattr(self, name)
            if leaf is not None:
                shape = jnp.shape(leaf)
                shapes.append(shape[: len(shape) - nd])
        return tuple(np.broadcast_shapes(*shapes)) if shapes else ()

    def broadcast(self, batch_shape: tuple[int, ...], n_features: int, dtype: Any) -> Penalty:
        """Return a copy whose leaves all have the leading ``batch_shape`` and the given dtype."""
        new = {}
        for name, nd in self._leaf_ndim.items():
            leaf = getattr(self, name)
            if leaf is None:
                leaf = np.ones(self._default_weight_size(n_features))
            host = None if isinstance(leaf, jax.core.Tracer) else np.asarray(leaf)
            # concrete leaves are shaped on the host: a copy to the device (V.to_device), no compiled op
            leaf = jnp.asarray(leaf, dtype) if host is None else np.asarray(host, dtype)
            base = leaf.shape[leaf.ndim - nd :]
            shape = tuple(batch_shape) + base
            if host is None:
                new[name] = jnp.broadcast_to(leaf, shape)
            else:
                new[name] = V.to_device(np.broadcast_to(leaf, shape))
        return dataclasses.replace(self, **new)

    def _default_weight_size(self, n_features: int) -> int:
        return n_features

    def _check_leaf(self, w: Array) -> Array:
        """Return ``w``, a leaf of a pytree of parameters, after checking that this penalty fits it."""
        return w


# -- the elastic-net family: per-coordinate l1 and l2 strengths ------------------------------


def _enet_value(w: Array, l1: Array, l2: Array) -> Array:
    l1, l2 = _rows(l1, w), _rows(l2, w)
    return jnp.sum(l1 * jnp.abs(w)) + 0.5 * jnp.sum(l2 * w**2)


def _enet_prox(w: Array, step: Array, l1: Array, l2: Array, positive: bool) -> Array:
    l1, l2 = _rows(l1, w), _rows(l2, w)
    return _soft_threshold(w, step * l1, positive) / (1.0 + step * l2)


def _enet_dual(v: Array, l1: Array, l2: Array, positive: bool) -> tuple[Array, Array]:
    """Scale ``c`` making ``c v`` feasible for the conjugate, and ``g*(c v)``.

    ``g_j(w) = l1_j |w| + l2_j / 2 w**2`` (+ the indicator of ``w >= 0`` when positive) has conjugate
    ``(|v| - l1_j)_+**2 / (2 l2_j)`` when ``l2_j > 0`` and the indicator of ``|v| <= l1_j`` when
    ``l2_j == 0`` (``|v|`` becomes ``v`` when positive).  Unpenalized coordinates (``l1 = l2 = 0``)
    are left out: their dual constraint ``v_j = 0`` holds at the optimum, see ``solvers``.
    """
    l1, l2 = _rows(l1, v), _rows(l2, v)
    a = v if positive else jnp.abs(v)
    l1_only = (l2 == 0) & (l1 > 0)
    ratio = jnp.where(l1_only, _safe_divide(a, jnp.where(l1_only, l1, 1.0)), 0.0)
    c = 1.0 / jnp.maximum(jnp.max(ratio, initial=0.0), 1.0)
    conj = _safe_divide(jnp.maximum(c * a - l1, 0.0) ** 2, 2.0 * l2)
    return c, jnp.sum(conj)


def _enet_critical_alpha(v: Array, weights: Array, l1_ratio: Array, positive: bool) -> Array:
    a = v if positive else jnp.abs(v)
    if a.ndim > 1:
        a = jnp.max(a, axis=tuple(range(1, a.ndim)))
    top = jnp.max(_safe_divide(a, weights), initial=0.0)
    top = jnp.maximum(top, 0.0)
    return jnp.where(l1_ratio > 0, _safe_divide(top, l1_ratio), jnp.inf)


class _ElasticNetFamily(Penalty):
    _leaf_ndim = {"alpha": 0, "weights": 1}

    def _strengths(self, n_features: int, dtype: Any) -> tuple[Array, Array]:
        raise NotImplementedError

    def _l1_ratio(self, dtype: Any) -> Array:
        raise NotImplementedError

    def _weights(self, n: int, dtype: Any) -> Array:
        return jnp.ones(n, dtype) if self.weights is None else jnp.asarray(self.weights, dtype)

    def _check_leaf(self, w: Array) -> Array:
        if self.weights is not None and jnp.ndim(self.weights) and jnp.shape(self.weights)[-1] != w.shape[0]:
            raise ValueError(
                f"{type(self).__name__}: weights of shape {jnp.shape(self.weights)} do not fit a "
                f"parameter of shape {w.shape} (weights index axis 0 of every leaf)"
            )
        return w

    @_leafwise_value
    def value(self, w: ArrayLike) -> Array:
        w = jnp.asarray(w)
        l1, l2 = self._strengths(w.shape[0], w.dtype)
        return _enet_value(w, l1, l2)

    @_leafwise_prox
    def prox(self, w: ArrayLike, step: ArrayLike) -> Array:
        """``argmin_z 0.5 * ||z - w||**2 + step * g(z)`` in closed form (exact zeros).

        The penalty is separable, so a per-coordinate ``step`` (an array of ``w``'s shape) gives the
        prox in the metric ``diag(1 / step)`` in the same closed form, coordinate by coordinate.
        """
        w = jnp.asarray(w)
        l1, l2 = self._strengths(w.shape[0], w.dtype)
        return _enet_prox(w, jnp.asarray(step, w.dtype), l1, l2, self.positive)

    def dual(self, v: ArrayLike) -> tuple[Array, Array]:
        v = jnp.asarray(v)
        l1, l2 = self._strengths(v.shape[0], v.dtype)
        return _enet_dual(v, l1, l2, self.positive)

    def critical_alpha(self, v: ArrayLike) -> Array:
        """Smallest ``alpha`` for which ``w = 0`` is optimal, given ``v = -grad`` of the loss at 0."""
        v = jnp.asarray(v)
        wt = self._weights(v.shape[0], v.dtype)
        return _enet_critical_alpha(v, wt, self._l1_ratio(v.dtype), self.positive)

    def take(self, idx: Array) -> Penalty:
        """The penalty on the features ``idx`` only (``weights`` must be set, as after ``broadcast``)."""
        return dataclasses.replace(self, weights=jnp.take(jnp.asarray(self.weights), idx, axis=-1))

    def unpenalized(self, w: ArrayLike) -> Array:
        """Boolean mask (shape of ``w``) of coordinates the penalty leaves free."""
        w = jnp.asarray(w)
        l1, l2 = self._strengths(w.shape[0], w.dtype)
        return jnp.broadcast_to(_rows((l1 == 0) & (l2 == 0), w), w.shape)


@_pytree_dataclass
class ElasticNet(_ElasticNetFamily):
    r"""Elastic-net penalty, scikit-learn's scaling.

    .. math:: g(w) = \alpha \sum_j \omega_j \big(\rho |w_j| + \tfrac{1-\rho}{2} w_j^2\big)

    with ``rho = l1_ratio`` in ``[0, 1]`` and ``omega = weights`` (default all ones).

    Args:
      alpha: non-negative strength (scalar, or a leading batch axis).
      l1_ratio: mixing ``rho``; 1 is the lasso, 0 is ridge.
      weights: per-feature penalty factors ``(n_features,)``, non-negative; 0 = unpenalized.
      positive: constrain coefficients to be non-negative.

    Example:
      >>> import jax.numpy as jnp, jaxreg as jr
      >>> jr.ElasticNet(alpha=1.0, l1_ratio=0.5).prox(jnp.array([3.0, -0.2]), 1.0).round(4).tolist()
      [1.6667, 0.0]
    """

    alpha: ArrayLike = 1.0
    l1_ratio: ArrayLike = 0.5
    weights: ArrayLike | None = None
    positive: bool = _static(False)

    _leaf_ndim = {"alpha": 0, "l1_ratio": 0, "weights": 1}

    def _l1_ratio(self, dtype: Any) -> Array:
        return jnp.asarray(self.l1_ratio, dtype)

    def _strengths(self, n_features: int, dtype: Any) -> tuple[Array, Array]:
        a = jnp.asarray(self.alpha, dtype) * self._weights(n_features, dtype)
        rho = self._l1_ratio(dtype)
        return a * rho, a * (1.0 - rho)


@_pytree_dataclass
class L1(_ElasticNetFamily):
    r"""Lasso penalty :math:`g(w) = \alpha \sum_j \omega_j |w_j|` (``omega = weights``).

    Args:
      alpha: non-negative strength (scalar, or a leading batch axis).
      weights: per-feature penalty factors ``(n_features,)``, non-negative; 0 = unpenalized.
      positive: constrain coefficients to be non-negative.

    Example:
      >>> import jax.numpy as jnp, jaxreg as jr
      >>> jr.L1(alpha=0.5).prox(jnp.array([2.0, -0.3, -1.0]), 1.0).tolist()
      [1.5, 0.0, -0.5]
    """

    alpha: ArrayLike = 1.0
    weights: ArrayLike | None = None
    positive: bool = _static(False)

    def _l1_ratio(self, dtype: Any) -> Array:
        return jnp.ones((), dtype)

    def _strengths(self, n_features: int, dtype: Any) -> tuple[Array, Array]:
        a = jnp.asarray(self.alpha, dtype) * self._weights(n_features, dtype)
        return a, jnp.zeros_like(a)


@_pytree_dataclass
class L2(_ElasticNetFamily):
    r"""Ridge penalty :math:`g(w) = \tfrac{\alpha}{2} \sum_j \omega_j w_j^2` (``omega = weights``).

    Never produces exact zeros; :meth:`critical_alpha` is ``inf``.

    Example:
      >>> import jax.numpy as jnp, jaxreg as jr
      >>> jr.L2(alpha=1.0).prox(jnp.array([2.0, -1.0]), 1.0).tolist()
      [1.0, -0.5]
    """

    alpha: ArrayLike = 1.0
    weights: ArrayLike | None = None
    positive = False

    def _l1_ratio(self, dtype: Any) -> Array:
        return jnp.zeros((), dtype)

    def _strengths(self, n_features: int, dtype: Any) -> tuple[Array, Array]:
        a = jnp.asarray(self.alpha, dtype) * self._weights(n_features, dtype)
        return jnp.zeros_like(a), a


def _normalize_groups(groups: Any) -> tuple[int, ...] | None:
    """Group label of every feature, relabelled 0..n_groups-1 in sorted order of the labels.

    Sorted order keeps ``weights[k]`` attached to the k-th smallest label whatever container the labels
    come in; for index lists, group ``k`` is the ``k``-th list.
    """
    if isinstance(groups, (int, np.integer)):
        raise TypeError("pass groups as a sequence; use GroupLasso.contiguous(n_features, size)")
    if groups is None:
        return None
    items = list(groups)
    if items and isinstance(items[0], (Sequence, np.ndarray)) and not isinstance(items[0], str):
        n = sum(len(g) for g in items)
        labels = [-1] * n
        for k, g in enumerate(items):
            for j in g:
                j = int(j)
                if not 0 <= j < n or labels[j] != -1:
                    raise ValueError("groups given as index lists must partition 0..n_features-1")
                labels[j] = k
        items = labels
    labels = [int(g) for g in items]
    if not labels:
        raise ValueError("groups must not be empty")
    relabel = {g: k for k, g in enumerate(sorted(set(labels)))}
    return tuple(relabel[g] for g in labels)


@_pytree_dataclass
class GroupLasso(Penalty):
    r"""Group lasso :math:`g(w) = \alpha \sum_g \omega_g \sqrt{|g|}\, \|w_g\|_2`.

    Groups partition the indices of ``w`` along ``axis``, and a group holds everything along the
    other axes; ``|g|`` is the number of indices in group ``g``, and the ``sqrt(|g|)`` factor (Yuan &
    Lin, 2006) makes groups of different sizes comparable.  For a 2-D ``w`` of shape
    ``(n_features, n_outputs)`` and ``axis=0``, a group holds all outputs of its features (glmnet's
    grouped multinomial lasso when every feature is its own group).

    On the weight matrix of a neural-network layer, ``groups=None`` (every index its own group) gives
    structured sparsity: for a kernel of shape ``(n_in, n_out)`` used as ``x @ W``, ``axis=0`` zeroes
    whole rows, removing input features, and ``axis=1`` whole columns, removing neurons (swap the two
    for layers that store ``(n_out, n_in)``).

    Args:
      alpha: non-negative strength (scalar, or a leading batch axis).
      groups: the group label of each index along ``axis`` (length ``w.shape[axis]``), or a list of
        index lists that partitions them; ``None`` (default): one group per index. Static.
      weights: per-group penalty factors ``(n_groups,)`` in sorted order of the group labels;
        0 = unpenalized group.
      axis: the axis of ``w`` that the groups index. Static; :func:`jaxreg.solve` needs ``axis=0``.

    Example:
      >>> import jax.numpy as jnp, jaxreg as jr
      >>> gl = jr.GroupLasso(alpha=1.0, groups=(0, 0, 1))
      >>> gl.prox(jnp.array([3.0, 4.0, 0.5]), 1.0).round(4).tolist()
      [2.1515, 2.8686, 0.0]
      >>> W = jnp.array([[3.0, 0.0], [4.0, 0.5]])
      >>> jr.GroupLasso(alpha=1.0, axis=1).prox(W, 1.0).round(4).tolist()  # columns [3, 4], [0, 0.5]
      [[2.4, 0.0], [3.2, 0.0]]
      >>> jr.GroupLasso(alpha=1.0, axis=0).prox(W, 1.0).round(4).tolist()  # rows [3, 0], [4, 0.5]
      [[2.0, 0.0], [3.0077, 0.376]]
    """

    alpha: ArrayLike = 1.0
    groups: tuple[int, ...] | None = _static(None)
    weights: ArrayLike | None = None
    axis: int = _static(0)

    _leaf_ndim = {"alpha": 0, "weights": 1}
    positive = False

    def __post_init__(self) -> None:
        canonical = (
            isinstance(self.groups, tuple)
            and all(type(g) is int for g in self.groups)
            and set(self.groups) == set(range(len(set(self.groups))))
        )
        if not canonical:
            object.__setattr__(self, "groups", _normalize_groups(self.groups))

    @classmethod
    def contiguous(cls, n_features: int, size: int, alpha: ArrayLike = 1.0, **kw: Any) -> GroupLasso:
        """Groups of ``size`` consecutive features (the last one may be smaller)."""
        return cls(alpha=alpha, groups=tuple(j // size for j in range(n_features)), **kw)

    @property
    def n_groups(self) -> int:
        """Number of groups (with ``groups=None`` it is ``w.shape[axis]``, known only from ``w``)."""
        if self.groups is None:
            raise ValueError("GroupLasso(groups=None) has one group per index along axis: w.shape[axis]")
        return max(self.groups) + 1

    def _default_weight_size(self, n_features: int) -> int:
        return n_features if self.groups is None else self.n_groups

    def _axis(self, w: Array) -> int:
        if not isinstance(self.axis, (int, np.integer)) or not -w.ndim <= self.axis < w.ndim:
            raise ValueError(f"GroupLasso(axis={self.axis}) does not fit w of shape {w.shape}")
        return self.axis % w.ndim

    def _ids(self, w: Array | None = None) -> np.ndarray:
        """Group of every index of ``w`` along ``axis`` (without ``w``: the explicit ``groups``)."""
        if w is None:
            if self.groups is None:
                raise ValueError("GroupLasso(groups=None) has one group per index along axis: pass w")
            return np.asarray(self.groups, dtype=np.int32)
        n = w.shape[self._axis(w)]
        if self.groups is None:
            return np.arange(n, dtype=np.int32)
        if n != len(self.groups):
            raise ValueError(
                f"GroupLasso has groups for {len(self.groups)} indices along axis {self.axis}, "
                f"got w of shape {w.shape}"
            )
        return np.asarray(self.groups, dtype=np.int32)

    def _group_strength(self, ids: np.ndarray, dtype: Any) -> Array:
        """``lam_g = alpha * weights_g * sqrt(|g|)`` for every group."""
        sizes = np.bincount(ids).astype(np.float64)
        wt = jnp.ones(sizes.size, dtype) if self.weights is None else jnp.asarray(self.weights, dtype)
        return jnp.asarray(self.alpha, dtype) * wt * jnp.asarray(np.sqrt(sizes), dtype)

    def _group_sq_norms(self, w: Array) -> Array:
        """``||w_g||**2`` for every group."""
        ids = self._ids(w)
        sq = jnp.moveaxis(w**2, self._axis(w), 0)
        sq = sq if sq.ndim == 1 else jnp.sum(sq, axis=tuple(range(1, sq.ndim)))
        return jax.ops.segment_sum(sq, jnp.asarray(ids), num_segments=int(ids.max(initial=-1)) + 1)

    def _along(self, per_group: Array, ids: np.ndarray, w: Array) -> Array:
        """A per-group array spread over ``w``'s indices along ``axis``, broadcastable against ``w``."""
        shape = [1] * w.ndim
        shape[self._axis(w)] = -1
        return jnp.reshape(per_group[jnp.asarray(ids)], shape)

    @_leafwise_value
    def value(self, w: ArrayLike) -> Array:
        w = jnp.asarray(w)
        ids = self._ids(w)
        norms = _safe_sqrt(self._group_sq_norms(w))
        return jnp.sum(self._group_strength(ids, w.dtype) * norms)

    @_leafwise_prox
    def prox(self, w: ArrayLike, step: ArrayLike) -> Array:
        """Block soft-thresholding ``w_g * max(0, 1 - step * lam_g / ||w_g||)``; exact zero blocks.

        ``lam_g = alpha * weights_g * sqrt(|g|)``.  A per-coordinate ``step`` (an array of ``w``'s
        shape) gives the prox in the metric ``diag(1 / step)``: group ``g`` is zero if and only if
        ``||w_g / step_g||_2 <= lam_g``; otherwise ``z_j = w_j * r / (r + lam_g * step_j)``, where
        ``r = ||z_g||_2 > 0`` is the root of ``sum_{j in g} w_j**2 / (r + lam_g * step_j)**2 = 1``,
        found by safeguarded Newton steps to machine precision.  With equal steps in a group both
        forms agree.
        """
        w = jnp.asarray(w)
        ids = self._ids(w)
        lam = self._group_strength(ids, w.dtype)
        step = jnp.asarray(step, w.dtype)
        if step.ndim:
            return self._prox_metric(w, jnp.broadcast_to(step, w.shape), ids, lam)
        norms = _safe_sqrt(self._group_sq_norms(w))
        thresh = step * lam
        shrink = jnp.maximum(1.0 - _safe_divide(thresh, norms), 0.0)
        shrink = jnp.where(norms > thresh, shrink, 0.0)
        return w * self._along(shrink, ids, w)

    def _prox_metric(self, w: Array, step: Array, ids: np.ndarray, lam: Array) -> Array:
        """The prox in the metric ``diag(1 / step)`` (see :meth:`prox`)."""
        ax = self._axis(w)
        x = jnp.moveaxis(w, ax, 0)
        s = jnp.moveaxis(step, ax, 0)
        x2, s2 = x.reshape(x.shape[0], -1), s.reshape(s.shape[0], -1)
        idx = jnp.asarray(ids)
        n_groups = lam.shape[0]
        seg = lambda f, a: f(a, idx, num_segments=n_groups)  # noqa: E731
        c = lam[idx][:, None] * s2  # lam_g * step_j
        sq = x2**2
        nonzero = seg(jax.ops.segment_sum, jnp.sum(jnp.where(x2 == 0, 0.0, x2 / s2) ** 2, axis=1)) > lam**2
        norm = jnp.sqrt(seg(jax.ops.segment_sum, jnp.sum(sq, axis=1)))
        # ||w_g|| - lam_g * step bounds the root r from below with the largest step, above with the smallest.
        lo = jnp.maximum(norm - lam * seg(jax.ops.segment_max, jnp.max(s2, axis=1)), 0.0)
        hi = jnp.maximum(norm - lam * seg(jax.ops.segment_min, jnp.min(s2, axis=1)), lo)
        hi = jnp.where(nonzero, hi, 1.0)
        lo = jnp.where(nonzero, lo, 0.0)

        # psi(r) = phi(r)**(-1/2) with phi(r) = sum_j w_j**2 / (r + c_j)**2 is increasing and concave,
        # and linear when the steps are equal: Newton from below converges monotonically and fast.
        def newton(_: int, state: tuple[Array, Array, Array]) -> tuple[Array, Array, Array]:
            r, lo, hi = state
            u = r[idx][:, None] + c
            phi = seg(jax.ops.segment_sum, jnp.sum(_safe_divide(sq, u**2), axis=1))
            dphi = seg(jax.ops.segment_sum, jnp.sum(_safe_divide(sq, u**3), axis=1))
            psi = jax.lax.rsqrt(jnp.where(phi > 0, phi, 1.0))
            below = psi < 1.0
            lo, hi = jnp.where(below, r, lo), jnp.where(below, hi, r)
            r_new = r + _safe_divide((1.0 - psi) * phi, psi * dphi)
            inside = jnp.isfinite(r_new) & (r_new >= lo) & (r_new <= hi)
            return jnp.where(inside, r_new, 0.5 * (lo + hi)), lo, hi

        r, _, _ = jax.lax.fori_loop(0, _NEWTON_STEPS, newton, (lo, lo, hi))
        r_j = r[idx][:, None]
        z = jnp.where(nonzero[idx][:, None], _safe_divide(x2 * r_j, r_j + c), 0.0)
        return jnp.moveaxis(z.reshape(x.shape), 0, ax)

    def dual(self, v: ArrayLike) -> tuple[Array, Array]:
        v = jnp.asarray(v)
        ids = self._ids(v)
        lam = self._group_strength(ids, v.dtype)
        norms = _safe_sqrt(self._group_sq_norms(v))
        ratio = jnp.where(lam > 0, _safe_divide(norms, lam), 0.0)
        c = 1.0 / jnp.maximum(jnp.max(ratio, initial=0.0), 1.0)
        return c, jnp.zeros((), v.dtype)

    def critical_alpha(self, v: ArrayLike) -> Array:
        v = jnp.asarray(v)
        ids = self._ids(v)
        unit = dataclasses.replace(self, alpha=jnp.ones((), v.dtype))
        lam = unit._group_strength(ids, v.dtype)
        norms = _safe_sqrt(self._group_sq_norms(v))
        return jnp.max(_safe_divide(norms, lam), initial=0.0)

    def unpenalized(self, w: ArrayLike) -> Array:
        w = jnp.asarray(w)
        ids = self._ids(w)
        free = self._group_strength(ids, w.dtype) == 0
        return jnp.broadcast_to(self._along(free, ids, w), w.shape)


#: Newton steps of the group-lasso prox in a diagonal metric (monotone, quadratic convergence).
_NEWTON_STEPS = 12


@jax.custom_jvp
def _safe_sqrt(x: Array) -> Array:
    """``sqrt`` with derivative 0 at 0 instead of ``inf`` (keeps gradients finite at zero blocks)."""
    return jnp.sqrt(x)


@_safe_sqrt.defjvp
def _safe_sqrt_jvp(primals: tuple[Array], tangents: tuple[Array]) -> tuple[Array, Array]:
    (x,), (dx,) = primals, tangents
    y = jnp.sqrt(x)
    return y, _safe_divide(dx, 2.0 * y)


def check_penalty(penalty: Penalty, n_features: int) -> None:
    """Raise ``ValueError`` for invalid concrete hyper-parameters (tracers are skipped)."""
    if not isinstance(penalty, Penalty):
        raise TypeError(f"penalty must be a jaxreg penalty (L1, L2, ElasticNet, GroupLasso), got {penalty!r}")

    name = type(penalty).__name__

    def concrete(x: Any, field: str) -> np.ndarray | None:
        if x is None or isinstance(x, jax.core.Tracer):
            return None
        try:
            a = np.asarray(x)
        except (TypeError, ValueError):
            a = np.asarray(None)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name}: {field} must be numeric, got {x!r}")
        return a.astype(float)

    alpha = concrete(penalty.alpha, "alpha")
    if alpha is not None:
        if not np.all(np.isfinite(alpha)):
            raise ValueError(f"{name}: alpha must be finite, got {alpha}")
        if np.any(alpha < 0):
            raise ValueError(f"{name}: alpha must be non-negative, got {alpha}")
    if isinstance(penalty, ElasticNet):
        rho = concrete(penalty.l1_ratio, "l1_ratio")
        if rho is not None and (not np.all(np.isfinite(rho)) or np.any((rho < 0) | (rho > 1))):
            raise ValueError(f"{name}: l1_ratio must lie in [0, 1], got {rho}")
    if isinstance(penalty, GroupLasso) and penalty.axis != 0:
        raise ValueError(f"GroupLasso: the solvers group features (axis=0), got axis={penalty.axis}")
    if isinstance(penalty, GroupLasso) and penalty.groups is not None and len(penalty.groups) != n_features:
        raise ValueError(f"GroupLasso: groups has {len(penalty.groups)} entries, X has {n_features} features")
    wt = concrete(penalty.weights, "weights")
    if wt is not None:
        size = penalty._default_weight_size(n_features)
        what = "n_groups" if isinstance(penalty, GroupLasso) else "n_features"
        if wt.shape[-1:] != (size,):
            raise ValueError(f"{name}: weights must have shape ({what},) = ({size},), got {wt.shape}")
        if not np.all(np.isfinite(wt)):
            raise ValueError(f"{name}: weights must be finite")
        if np.any(wt < 0):
            raise ValueError(f"{name}: weights (penalty factors) must be non-negative")


# -- pytrees of penalties ------------------------------------------------------------------------


def _is_penalty_leaf(x: Any) -> bool:
    return x is None or isinstance(x, Penalty)


def _apply_penalty(pen: Any, fn: Callable[[Penalty], Any], default: Any) -> Any:
    if pen is None:
        return default
    if not isinstance(pen, Penalty):
        raise TypeError(f"penalties must be a jaxreg penalty, None, or a pytree of them; got {pen!r}")
    return fn(pen)


def tree_value(penalties: Any, params: Any) -> Array:
    """Total penalty of a pytree of parameters, to add to any loss.

    ``penalties`` is one penalty, applied to every leaf of ``params``, or a pytree of penalties whose
    structure is a prefix of ``params``' structure; ``None`` leaves a subtree unpenalized::

        tree_value(penalties, params) = sum over pairs (g, p) of g.value(p)

    where ``g.value`` of a pytree is the sum over its leaves (:meth:`Penalty.value`).

    Args:
      penalties: a :class:`Penalty`, ``None``, or a pytree of them matching ``params``.
      params: a pytree of arrays.

    Returns:
      A scalar.

    Example:
      >>> import jax.numpy as jnp, jaxreg as jr
      >>> params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(5.0)}
      >>> float(jr.tree_value({"w": jr.L1(alpha=0.5), "b": None}, params))
      1.5
      >>> float(jr.tree_value(jr.L1(alpha=0.5), params))
      4.0
    """
    parts = jax.tree_util.tree_map(
        lambda pen, p: _apply_penalty(pen, lambda g: g.value(p), None),
        penalties,
        params,
        is_leaf=_is_penalty_leaf,
    )
    parts = jax.tree_util.tree_leaves(parts)
    return functools.reduce(operator.add, parts) if parts else jnp.asarray(0.0)


def tree_prox(penalties: Any, params: Any, step: Any) -> Any:
    """Proximal operator of :func:`tree_value`, leaf by leaf.

    ::

        tree_prox(penalties, params, step)
            = argmin_z sum_j (z_j - params_j)**2 / (2 * step_j) + tree_value(penalties, z)

    which separates into ``g.prox(p, step)`` for every pair ``(g, p)`` and the identity where ``g``
    is ``None``.  Exact zeros come from the closed forms of the penalties' proxes.

    Args:
      penalties: a :class:`Penalty`, ``None``, or a pytree of them matching ``params`` (see
        :func:`tree_value`).
      params: a pytree of arrays.
      step: a positive scalar, or a pytree like ``params`` of per-coordinate steps (the prox in the
        metric ``diag(1 / step)``).

    Returns:
      A pytree like ``params``.

    Example:
      >>> import jax.numpy as jnp, jaxreg as jr
      >>> params = {"w": jnp.array([1.0, -0.2]), "b": jnp.array(0.1)}
      >>> out = jr.tree_prox({"w": jr.L1(alpha=0.5), "b": None}, params, 1.0)
      >>> out["w"].tolist(), float(out["b"])
      ([0.5, 0.0], 0.1)
    """
    if _is_leaf(step):
        fn = lambda pen, p: _apply_penalty(pen, lambda g: g.prox(p, step), p)  # noqa: E731
        return jax.tree_util.tree_map(fn, penalties, params, is_leaf=_is_penalty_leaf)
    fn = lambda pen, p, st: _apply_penalty(pen, lambda g: g.prox(p, st), p)  # noqa: E731
    return jax.tree_util.tree_map(fn, penalties, params, step, is_leaf=_is_penalty_leaf)
