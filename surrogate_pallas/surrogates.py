"""The surrogate-gradient registry.

Every surrogate is written once, as jnp expressions on ``x = v - thr`` (for
``secant_lif``: on the input current ``j``) and plain Python-float parameters.
The same functions are traced inside the Pallas kernel bodies and in the jnp
references, so a kernel can only differ from the oracle in how it moves data.

``grad(x)`` is the surrogate derivative ``sg(x)`` used in place of ``dH/dx``;
``fn(x)`` is the smooth function whose derivative ``grad`` is (``None`` where
the defining library gives none).  Formulas: docs/numerics.md section 1 and the README's table.

Numerics: the formulas are evaluated in float32 whatever the input dtype, and
written so that no finite input of any magnitude gives NaN or Inf (tails use
``exp(-|.|)`` forms; overflowing squares become ``1/inf = 0``).
"""
from __future__ import annotations

import dataclasses
import math
import types
from typing import Callable, Mapping

import jax.numpy as jnp
from jax import lax

_PI = math.pi


def fire(x, fire_on_equal: bool):
    """H(x): ``x > 0`` (ngclearn, snnTorch, Spyx) or ``x >= 0`` (SpikingJelly, braintools). NaN never fires."""
    return (x >= 0) if fire_on_equal else (x > 0)


def _f32(x):
    return jnp.asarray(x).astype(jnp.float32)


def _sigmoid(z):
    # stable on both tails, and so is its autodiff derivative
    e = jnp.exp(-jnp.abs(z))
    return jnp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_grad(z, alpha):
    # alpha*s*(1-s) written as alpha*e/(1+e)^2 with e = exp(-|z|): exact in the
    # tails, never overflows (snnTorch issue 427).
    e = jnp.exp(-jnp.abs(z))
    return alpha * e / ((1.0 + e) * (1.0 + e))


@dataclasses.dataclass(frozen=True)
class _Def:
    grad: Callable
    fn: Callable | None
    defaults: tuple[tuple[str, float | bool], ...]
    checks: tuple[tuple[str, Callable[[float], bool], str], ...] = ()
    doc: str = ""
    on_current: bool = False  # secant_lif: argument is the input current j
    nan_guard: bool = False  # a select-based formula that would map NaN to a number


_POS = (lambda p: p > 0, "> 0")
_REGISTRY: dict[str, _Def] = {}


def _register(name, grad, fn, defaults, positive=(), checks=(), doc="", on_current=False, nan_guard=False):
    all_checks = tuple((p, _POS[0], _POS[1]) for p in positive) + tuple(checks)
    _REGISTRY[name] = _Def(grad, fn, tuple(defaults.items()), all_checks, doc, on_current, nan_guard)


def _ramp(y, alpha):
    # antiderivative of max(0, 1 - alpha|y|) on |y| <= 1/alpha
    return y - alpha * y * jnp.abs(y) / 2.0


# ---------------------------------------------------------------- ngclearn (docs/numerics.md 1)
_register("straight_through", lambda x: jnp.ones_like(x), lambda x: x, {},
          nan_guard=True, doc="1 everywhere (ngclearn straight_through_estimator)")
_register("triangular", lambda x, alpha: jnp.maximum(0.0, 1.0 - alpha * jnp.abs(x)),
          lambda x, alpha: _ramp(jnp.clip(x, -1.0 / alpha, 1.0 / alpha), alpha),
          {"alpha": 2.0}, positive=("alpha",), doc="max(0, 1 - alpha*abs(x)) (ngclearn)")
_register("explicit_triangular",
          lambda x, window: jnp.maximum(0.0, 1.0 - jnp.abs(x) / window),
          lambda x, window: _ramp(jnp.clip(x, -window, window), 1.0 / window),
          {"window": 5.0}, positive=("window",), doc="max(0, 1 - abs(x)/window) (ngclearn)")
_register("arctan",
          lambda x, alpha: (1.0 / (1.0 + jnp.square(x * _PI * (alpha / 2.0)))) * (1.0 / _PI),
          lambda x, alpha: jnp.arctan(_PI * alpha / 2.0 * x) / (_PI * _PI * alpha / 2.0),
          {"alpha": 2.0}, positive=("alpha",),
          doc="(1/pi)/(1+(pi*alpha/2*x)^2) (ngclearn's scaled arctan; LIFCell uses alpha=0.2)")
_register("boxcar", lambda x, window: jnp.where(jnp.abs(x) <= window, 1.0, 0.0),
          lambda x, window: jnp.clip(x, -window, window), {"window": 5.0}, positive=("window",),
          nan_guard=True, doc="1 if abs(x) <= window else 0 (ngclearn)")


def _secant_grad(j, c1, c2, omit_scale):
    # ngclearn's exact arithmetic: 1/((exp(c2 j)+exp(-c2 j))/2) * [j > 0]
    mask = (j > 0.0).astype(jnp.float32)
    dj = j * c2
    sech = 1.0 / ((jnp.exp(dj) + jnp.exp(-dj)) / 2.0)
    if not omit_scale:
        sech = sech * (c1 * c2)
    return sech * mask


def _secant_fn(j, c1, c2, omit_scale):
    # antiderivative of sech(c2 j)[j > 0]: gd(c2 j)/c2 with the Gudermannian gd(u) = 2 atan(e^u) - pi/2
    # (u is capped at 40, where sech < 1e-17, so that e^(2u) stays finite)
    scale = 1.0 if omit_scale else c1 * c2
    u = jnp.minimum(c2 * jnp.maximum(j, 0.0), 40.0)
    return jnp.where(j > 0, scale / c2 * (2.0 * jnp.arctan(jnp.exp(u)) - _PI / 2.0), 0.0)


_register("secant_lif", _secant_grad, _secant_fn,
          {"c1": 0.82, "c2": 0.08, "omit_scale": True}, positive=("c1", "c2"), on_current=True,
          doc="sech(c2*j)*[j>0] (x c1*c2 unless omit_scale); argument is the current j (ngclearn)")

# ---------------------------------------------------------------- peers (the README's table)
_register("atan", lambda x, alpha: (alpha / 2.0) / (1.0 + jnp.square(_PI * alpha / 2.0 * x)),
          lambda x, alpha: jnp.arctan(_PI * alpha / 2.0 * x) / _PI + 0.5,
          {"alpha": 2.0}, positive=("alpha",), doc="(alpha/2)/(1+(pi*alpha/2*x)^2) (snnTorch, SpikingJelly)")
_register("sigmoid", lambda x, alpha: _sigmoid_grad(alpha * x, alpha),
          lambda x, alpha: _sigmoid(alpha * x),
          {"alpha": 4.0}, positive=("alpha",), doc="alpha*s*(1-s), s=sigmoid(alpha*x) (SpikingJelly; snnTorch slope=25)")
_fast_sigmoid = lambda x, slope: 1.0 / jnp.square(1.0 + slope * jnp.abs(x))
_register("fast_sigmoid", _fast_sigmoid, None, {"slope": 25.0}, positive=("slope",),
          doc="1/(1+slope*abs(x))^2 (snnTorch, Spyx)")
_register("superspike", _fast_sigmoid, None, {"slope": 25.0}, positive=("slope",),
          doc="alias of fast_sigmoid (Zenke & Ganguli; Spyx superspike)")
_register("erf", lambda x, alpha: alpha / math.sqrt(_PI) * jnp.exp(-jnp.square(alpha * x)),
          lambda x, alpha: (1.0 + lax.erf(alpha * x)) / 2.0,
          {"alpha": 2.0}, positive=("alpha",), doc="alpha/sqrt(pi) exp(-(alpha x)^2)")
_register("piecewise_quadratic",
          lambda x, alpha: jnp.where(jnp.abs(x) <= 1.0 / alpha, alpha - alpha * alpha * jnp.abs(x), 0.0),
          lambda x, alpha: jnp.where(x < -1.0 / alpha, 0.0, jnp.where(
              x > 1.0 / alpha, 1.0,
              -0.5 * alpha * alpha * jnp.abs(x) * x + alpha * x + 0.5)),
          {"alpha": 1.0}, positive=("alpha",), nan_guard=True, doc="alpha - alpha^2*abs(x) on abs(x) <= 1/alpha")
_register("piecewise_exp", lambda x, alpha: alpha / 2.0 * jnp.exp(-alpha * jnp.abs(x)),
          lambda x, alpha: jnp.where(x < 0, jnp.exp(alpha * jnp.minimum(x, 0.0)) / 2.0,
                                     1.0 - jnp.exp(-alpha * jnp.maximum(x, 0.0)) / 2.0),
          {"alpha": 1.0}, positive=("alpha",), doc="alpha/2 exp(-alpha*abs(x))")
_register("soft_sign", lambda x, alpha: alpha / (2.0 * jnp.square(1.0 + alpha * jnp.abs(x))),
          lambda x, alpha: (x / (1.0 / alpha + jnp.abs(x)) + 1.0) / 2.0,
          {"alpha": 2.0}, positive=("alpha",), doc="alpha/(2(1+alpha*abs(x))^2)")
_register("rect", lambda x, alpha: jnp.where(jnp.abs(x) < 0.5 / alpha, alpha, 0.0),
          lambda x, alpha: jnp.clip(alpha * x + 0.5, 0.0, 1.0),
          {"alpha": 1.0}, positive=("alpha",), nan_guard=True, doc="alpha * [abs(x) < 1/(2 alpha)]")
_register("piecewise_leaky_relu",
          lambda x, w, c: jnp.where(jnp.abs(x) < w, 1.0 / (2.0 * w), c),
          lambda x, w, c: jnp.where(x < -w, c * x + c * w, jnp.where(
              x > w, c * x - c * w + 1.0, x / (2.0 * w) + 0.5)),
          {"w": 1.0, "c": 0.01}, positive=("w",),
          checks=(("c", lambda p: p >= 0, ">= 0"),), nan_guard=True, doc="1/(2w) on abs(x) < w, else c")


def _s2nn_grad(x, alpha, beta):
    # beta/(x+1) only evaluated where x >= 0 (guarded so the other branch is finite)
    return jnp.where(x < 0, _sigmoid_grad(alpha * x, alpha), beta / (jnp.maximum(x, 0.0) + 1.0))


_register("s2nn", _s2nn_grad,
          lambda x, alpha, beta: jnp.where(x < 0, _sigmoid(alpha * jnp.minimum(x, 0.0)),
                                           0.5 + beta * jnp.log1p(jnp.maximum(x, 0.0))),
          {"alpha": 4.0, "beta": 1.0}, positive=("alpha", "beta"),
          doc="alpha s(1-s) for x<0, beta/(x+1) for x>=0 (SpikingJelly S2NN)")
_register("q_pseudo_spike",
          lambda x, alpha: jnp.exp(-alpha * jnp.log1p(2.0 * jnp.abs(x) / (alpha - 1.0))),
          None, {"alpha": 2.0}, checks=(("alpha", lambda p: p > 1, "> 1"),),
          doc="(1 + 2*abs(x)/(alpha-1))^(-alpha) (SpikingJelly QPseudoSpike)")
_register("log_tailed_relu",
          lambda x, alpha: jnp.where(x <= 0, alpha, jnp.where(x <= 1, 1.0, 1.0 / jnp.maximum(x, 1.0))),
          None, {"alpha": 0.0}, checks=(("alpha", lambda p: p >= 0, ">= 0"),),
          doc="alpha (x<=0), 1 (0<x<=1), 1/x (x>1) (SpikingJelly LogTailedReLU)")
_register("slayer", lambda x, alpha: jnp.exp(-alpha * jnp.abs(x)), None, {"alpha": 1.0},
          positive=("alpha",), doc="exp(-alpha*abs(x)) (SLAYER's PDF)")

# ---------------------------------------------------------------- braintools extras
_SQRT2PI = math.sqrt(2.0 * _PI)
_register("gaussian", lambda x, sigma: jnp.exp(-jnp.square(x / sigma) / 2.0) / (_SQRT2PI * sigma),
          lambda x, sigma: (1.0 + lax.erf(x / (sigma * math.sqrt(2.0)))) / 2.0,
          {"sigma": 0.5}, positive=("sigma",), doc="N(x; 0, sigma^2) density (braintools GaussianGrad)")
_register("nonzero_sign_log", lambda x, alpha: 1.0 / (1.0 / alpha + jnp.abs(x)),
          lambda x, alpha: jnp.sign(x) * jnp.log1p(alpha * jnp.abs(x)),
          {"alpha": 1.0}, positive=("alpha",), doc="1/(1/alpha + abs(x)) (braintools NonzeroSignLog)")
_register("inverse_square_root", lambda x, alpha: jnp.exp(-1.5 * jnp.log1p(alpha * jnp.square(x))),
          lambda x, alpha: x / jnp.sqrt(1.0 + alpha * jnp.square(x)),
          {"alpha": 1.0}, positive=("alpha",), doc="(1 + alpha x^2)^(-3/2) (braintools InvSquareGrad-style)")

SURROGATES: tuple[str, ...] = tuple(_REGISTRY)


@dataclasses.dataclass(frozen=True)
class Surrogate:
    """An immutable, hashable surrogate: a name and its (complete) parameters."""

    name: str
    _items: tuple[tuple[str, float | bool], ...]

    @property
    def params(self) -> Mapping[str, float | bool]:
        return types.MappingProxyType(dict(self._items))

    @property
    def on_current(self) -> bool:
        """True for ``secant_lif``, whose argument is the input current, not ``v - thr``."""
        return _REGISTRY[self.name].on_current

    def grad(self, x):
        """The surrogate derivative sg(x), computed in float32; NaN in, NaN out."""
        x = _f32(x)
        d = _REGISTRY[self.name]
        g = d.grad(x, **self.params)
        return jnp.where(jnp.isnan(x), x, g) if d.nan_guard else g

    @property
    def fn(self) -> Callable | None:
        """sigma(x) with ``jax.grad(fn) == grad``; ``None`` where the library gives none."""
        f = _REGISTRY[self.name].fn
        if f is None:
            return None
        params = self.params
        return lambda x: f(_f32(x), **params)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._items)
        return f"Surrogate({self.name!r}{', ' if args else ''}{args})"


def get_surrogate(name: str | Surrogate, **params) -> Surrogate:
    """Look up a surrogate by name, with parameter overrides.

    Raises ``ValueError`` for an unknown name (listing the valid ones), an
    unknown parameter, or an invalid value (naming the parameter).
    """
    if isinstance(name, Surrogate):
        if not params:
            return name
        params = {**name.params, **params}
        name = name.name
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"surrogate: unknown surrogate {name!r}; expected one of {', '.join(SURROGATES)}")
    d = _REGISTRY[name]
    defaults = dict(d.defaults)
    for k in params:
        if k not in defaults:
            valid = ", ".join(defaults) or "none"
            raise ValueError(f"surrogate {name!r}: unknown parameter {k!r}; valid parameters: {valid}")
    items = []
    for k, default in d.defaults:
        v = params.get(k, default)
        if isinstance(default, bool):
            if not isinstance(v, (bool, int)):
                raise ValueError(f"surrogate {name!r}: parameter {k!r} must be a bool, got {v!r}")
            v = bool(v)
        else:
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"surrogate {name!r}: parameter {k!r} must be a Python number, got {v!r}") from None
            if not math.isfinite(v):
                raise ValueError(f"surrogate {name!r}: parameter {k!r} must be finite, got {v!r}")
        items.append((k, v))
    values = dict(items)
    for k, ok, what in d.checks:
        if not ok(values[k]):
            raise ValueError(f"surrogate {name!r}: parameter {k!r} must be {what}, got {values[k]!r}")
    return Surrogate(name, tuple(items))
