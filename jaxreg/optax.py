"""Proximal optax transformations: L1, group-lasso and elastic-net training of any JAX model.

Adding ``alpha * ||w||_1`` to a loss and following its (sub)gradient leaves weights that oscillate
around zero but are almost never exactly zero.  A proximal step keeps the penalty ``g`` out of the
gradient and applies its closed-form prox after the gradient step, which gives exact zeros::

    w_next = prox_{lr * g}(w - lr * grad f(w))

:func:`proximal` is that prox step as an :class:`optax.GradientTransformation` to chain after any
optimizer; ``optax.chain(optax.sgd(lr), proximal(penalties, lr))`` is proximal gradient descent (ISTA;
for ``sgd`` with momentum see :func:`proximal`).  ``penalties`` is one penalty for every leaf or a
pytree of penalties matching the parameters (``None`` = unpenalized), see :func:`jaxreg.tree_prox`;
:func:`jaxreg.tree_value` gives the matching penalty value for logging the objective.

After an adaptive optimizer.  ``optax.chain(optax.adam(lr), proximal(g, lr))`` takes Adam's step
``u = -lr * m_hat / d`` (``d = sqrt(v_hat) + eps``) and then the Euclidean prox with the base
learning rate, ``w_next = prox_{lr * g}(w + u)``.  Its fixed points satisfy ``m_hat / d in -dg(w)``:
the penalty acts *decoupled* from the loss, as weight decay does in AdamW (with ``L2(alpha)`` it is
AdamW's decay ``w - lr * alpha * w`` to first order in ``lr``), and relative to the loss its strength
on coordinate ``j`` is rescaled by ``d_j``, which moves during training.  Zeros are still exact, but
the fixed points are in general not stationary points of ``loss + g``.

:func:`proximal_adam` is the sound per-coordinate variant: the prox is taken in Adam's own metric::

    w_next = argmin_z  m_hat . (z - w) + sum_j d_j / (2 * lr) * (z_j - w_j)**2 + g(z),

that is ``prox`` with per-coordinate steps ``lr / d_j`` at Adam's point ``w + u``.  Its fixed points
satisfy ``m_hat in -dg(w)``, with ``m_hat`` the gradient estimate: first-order optimality of
``loss + g`` whatever ``d`` is.  It cannot be an option of :func:`proximal`: a transformation chained
after an optimizer sees only the final update, and guessing the metric from it (``-u_j / grad_j``)
mixes in the momentum, is undefined where a gradient is zero and can be negative; so the variant owns
its Adam moments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from .penalties import tree_prox

__all__ = ["proximal", "ProximalState", "proximal_adam", "ProximalAdamState"]

Array = jax.Array
LearningRate = float | ArrayLike | Callable[[Array], ArrayLike]

_NO_PARAMS = "jaxreg.optax transformations need the current params: call update(updates, state, params)"


class ProximalState(NamedTuple):
    """State of :func:`proximal`.

    Attributes:
      count: number of updates so far, ``int32``; a schedule is evaluated at it.
    """

    count: Array


class ProximalAdamState(NamedTuple):
    """State of :func:`proximal_adam` (the fields of :class:`optax.ScaleByAdamState`).

    Attributes:
      count: number of updates so far, ``int32``.
      mu: first moment ``m``, like the parameters.
      nu: second moment ``v``, like the parameters.
    """

    count: Array
    mu: optax.Updates
    nu: optax.Updates


def _learning_rate(learning_rate: LearningRate, count: Array) -> ArrayLike:
    return learning_rate(count) if callable(learning_rate) else learning_rate


def _as_updates(new_params: Any, params: Any, updates: Any) -> Any:
    """``new_params - params`` in the updates' dtypes.

    A zero of the prox stays exact after ``optax.apply_updates``: ``p + (0 - p) == 0`` in floating point.
    """
    diff = lambda z, p, u: jnp.asarray(z - p, jnp.result_type(u))  # noqa: E731
    return jax.tree_util.tree_map(diff, new_params, params, updates)


def proximal(penalties: Any, learning_rate: LearningRate) -> optax.GradientTransformation:
    r"""Proximal step of a penalty, to chain after a gradient step.

    Maps ``updates`` ``u`` to

    .. math:: \operatorname{prox}_{\eta_k g}(w + u) - w,
       \qquad \operatorname{prox}_{\eta g}(v) = \arg\min_z \tfrac12 \|z - v\|^2 + \eta\, g(z),

    with ``w`` the current parameters, ``eta_k = learning_rate(k)`` at update ``k`` (counted from 0,
    as optax's schedules are) or the constant ``learning_rate``, and ``g = tree_value(penalties, .)``.
    After ``optax.apply_updates`` the parameters are ``prox(w + u)``, with the exact zeros of the
    prox.  ``optax.chain(optax.sgd(lr), proximal(g, lr))`` is proximal gradient descent on
    ``loss + g`` (use the same ``lr``).  After ``optax.sgd(lr, momentum=beta)`` (heavy ball or
    Nesterov) the velocity tends to ``grad / (1 - beta)``: use ``proximal(g, lr / (1 - beta))`` so
    that fixed points are those of ``loss + g``.  After Adam see the module docstring and
    :func:`proximal_adam`.

    Pure ``jnp`` on the leaves: works under ``jit``, ``vmap``, ``pmap`` and with sharded parameters
    (the prox is elementwise, or a reduction within each group).  The penalties' hyper-parameters are
    pytree leaves, so ``alpha`` can be traced or vmapped.

    Args:
      penalties: a :class:`jaxreg.Penalty` for every leaf, or a pytree of penalties (and ``None`` =
        unpenalized) whose structure is a prefix of the parameters' (see :func:`jaxreg.tree_prox`).
      learning_rate: the prox step ``eta``: a positive float or an optax schedule ``count -> eta``.

    Returns:
      An :class:`optax.GradientTransformation` with state :class:`ProximalState`; ``update`` requires
      ``params``.

    Example:
      >>> import jax.numpy as jnp, optax, jaxreg as jr, jaxreg.optax as jro
      >>> opt = optax.chain(optax.sgd(0.1), jro.proximal(jr.L1(alpha=1.0), 0.1))
      >>> params = {"w": jnp.array([1.0, 0.05, -0.3])}
      >>> state = opt.init(params)
      >>> grads = {"w": jnp.array([0.0, 0.0, -1.0])}
      >>> updates, state = opt.update(grads, state, params)
      >>> optax.apply_updates(params, updates)["w"].round(6).tolist()
      [0.9, 0.0, -0.1]
    """

    def init_fn(params: optax.Params) -> ProximalState:
        del params
        return ProximalState(count=jnp.zeros([], jnp.int32))

    def update_fn(
        updates: optax.Updates, state: ProximalState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, ProximalState]:
        if params is None:
            raise ValueError(_NO_PARAMS)
        step = _learning_rate(learning_rate, state.count)
        moved = jax.tree_util.tree_map(lambda p, u: p + u, params, updates)
        new_params = tree_prox(penalties, moved, step)
        count = optax.safe_int32_increment(state.count)
        return _as_updates(new_params, params, updates), ProximalState(count=count)

    return optax.GradientTransformation(init_fn, update_fn)


def proximal_adam(
    penalties: Any,
    learning_rate: LearningRate,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
) -> optax.GradientTransformation:
    r"""Adam with the penalty's prox taken in Adam's per-coordinate metric.

    With optax's Adam moments (:func:`optax.scale_by_adam`): ``m_hat = m / (1 - b1**t)``,
    ``v_hat = v / (1 - b2**t)``, ``d = sqrt(v_hat + eps_root) + eps`` and ``eta_t`` the learning
    rate, the new parameters are

    .. math:: w_{t+1} = \arg\min_z\; \hat m^\top (z - w_t)
              + \sum_j \frac{d_j}{2\eta_t} (z_j - w_{t,j})^2 + g(z)
              = \operatorname{prox}^{\,\eta_t / d}_{g}\big(w_t - \eta_t\, \hat m / d\big),

    the prox with per-coordinate steps ``eta_t / d_j`` (see :meth:`jaxreg.Penalty.prox`): closed
    form for L1, L2 and ElasticNet, a few Newton steps per group for GroupLasso.  With
    ``penalties=None`` it is ``optax.adam`` (up to rounding).  Fixed points satisfy
    ``-m_hat in dg(w)``: first-order optimality of ``loss + g`` (see the module docstring for the
    difference with chaining ``optax.adam`` and :func:`proximal`).

    Args:
      penalties: as in :func:`proximal`.
      learning_rate: ``eta``: a positive float or an optax schedule ``count -> eta``.
      b1, b2, eps, eps_root: Adam's constants, as in :func:`optax.adam`.

    Returns:
      An :class:`optax.GradientTransformation` (a complete optimizer: feed it gradients) with state
      :class:`ProximalAdamState`; ``update`` requires ``params``.

    Example:
      >>> import jax, jax.numpy as jnp, optax, jaxreg as jr, jaxreg.optax as jro
      >>> params = {"w": jnp.array([1.0, -1.0, 0.5])}
      >>> loss = lambda p: 0.5 * jnp.sum((p["w"] - jnp.array([2.0, -0.1, 0.0])) ** 2)
      >>> opt = jro.proximal_adam(jr.L1(alpha=0.5), 0.05)
      >>> @jax.jit
      ... def train_step(params, state):
      ...     updates, state = opt.update(jax.grad(loss)(params), state, params)
      ...     return optax.apply_updates(params, updates), state
      >>> state = opt.init(params)
      >>> for _ in range(300):
      ...     params, state = train_step(params, state)
      >>> params["w"].round(2).tolist()     # the lasso solution: soft-threshold of the target
      [1.5, 0.0, 0.0]
    """
    adam = optax.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root)

    def init_fn(params: optax.Params) -> ProximalAdamState:
        return ProximalAdamState(*adam.init(params))

    def update_fn(
        updates: optax.Updates, state: ProximalAdamState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, ProximalAdamState]:
        if params is None:
            raise ValueError(_NO_PARAMS)
        direction, inner = adam.update(updates, optax.ScaleByAdamState(*state), params)
        lr = _learning_rate(learning_rate, state.count)

        def metric_step(nu: Array) -> Array:
            v_hat = nu / (1.0 - jnp.asarray(b2, nu.dtype) ** inner.count)
            return jnp.asarray(lr, nu.dtype) / (jnp.sqrt(v_hat + eps_root) + eps)

        steps = jax.tree_util.tree_map(metric_step, inner.nu)
        moved = jax.tree_util.tree_map(lambda p, m: p - lr * m, params, direction)
        new_params = tree_prox(penalties, moved, steps)
        return _as_updates(new_params, params, updates), ProximalAdamState(*inner)

    return optax.GradientTransformation(init_fn, update_fn)
