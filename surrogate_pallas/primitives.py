"""JAX primitives for the fused LIF kernels.

Three primitives share one factory: ``lif_train_fwd`` (a neuron over T steps:
a training preset, ngclearn's cell or a user's ``Neuron``), and the two linear
maps of its derivative, ``lif_train_tan`` (forward mode) and ``lif_train_bwd``
(reverse mode, reverse time).  ``lif_step`` is the T = 1 case of these.

Each has an abstract eval, a default lowering to the jnp reference, and
platform lowerings (``cuda``: Pallas Triton or Mosaic GPU; ``tpu``: Pallas
Mosaic) chosen by its ``backend`` parameter.  Batching folds the vmapped axis
into the neuron axis (the ops are elementwise over neurons).  AD: the JVP of
``lif_train_fwd`` saves lean residuals and applies ``lif_train_tan``, whose
transpose is ``lif_train_bwd``, so ``jax.grad`` runs the fused reverse-time
kernel and ``jax.jvp`` the fused tangent kernel.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax._src import dispatch
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from . import kernels, partitioning, reference
from ._gpu_lowering import abstract_gpu
from .kernels import derive, specs

GPU_BACKENDS = ("triton", "mosaic")
BACKENDS = ("auto", "xla", "pallas", "interpret", "interpret_tpu") + GPU_BACKENDS


def target_for(backend: str, gpu_backend: str, platform: str) -> str | None:
    """The kernel target for this backend choice on this platform; ``None`` means the jnp reference.

    ``backend="triton"|"mosaic"`` is ``"pallas"`` with that GPU backend, and needs a CUDA device.
    """
    if backend == "xla":
        return None
    if backend in ("interpret", "interpret_tpu"):
        return backend
    if backend in GPU_BACKENDS:
        if platform not in ("cuda", "rocm"):
            raise ValueError(f"backend={backend!r} runs on NVIDIA GPUs only; this computation is lowered for "
                             f"{platform!r} (use 'auto', 'pallas' or 'interpret')")
        return backend
    if platform in ("cuda", "rocm"):
        return "triton" if platform == "rocm" else gpu_backend
    if platform == "tpu":
        return "tpu"
    return "interpret" if backend == "pallas" else None


# ----------------------------------------------------------------------------- specs from params
_SPEC_KEYS = ("lif", "layout", "with_surrogate", "save_residuals", "residual_dtype")


@functools.lru_cache(maxsize=1024)
def _cached_spec(name, key):
    kw = dict(key)
    lif = kw["lif"]
    if name == "lif_train_fwd":
        return specs.train_forward(lif, kw["layout"], kw["save_residuals"], kw["residual_dtype"], kw["with_surrogate"])
    if name == "lif_train_bwd":
        return specs.train_backward(lif, kw["layout"])
    return specs.train_tangent(lif, kw["layout"])


def spec_of(name, params):
    """The ``Spec`` a call of primitive ``name`` with these parameters runs (built once)."""
    return _cached_spec(name, tuple((k, params[k]) for k in _SPEC_KEYS if k in params))


def _split(spec, operands):
    i = 0
    out = []
    for n in (spec.n_seq_in, spec.n_state, spec.n_consts, spec.n_tiles):
        out.append(tuple(operands[i:i + n]))
        i += n
    return out


def _kernel_target(name, avals, platform, backend="auto", gpu_backend="triton", **params):
    """The kernel target this call runs on, or None where the jnp reference runs."""
    spec = spec_of(name, params)
    if avals[0].shape[0] == 0 or avals[spec.n_seq_in].size == 0:
        return None
    return target_for(backend, gpu_backend, platform)


def _run(name, operands, platform, *, seq_out_dtypes, state_out_dtypes, backend="auto",
         gpu_backend="triton", block_sizes=None, **spec_kw):
    spec = spec_of(name, spec_kw)
    seq_in, state_in, consts, tiles = _split(spec, operands)
    target = _kernel_target(name, operands, platform, backend, gpu_backend, **spec_kw)
    if target is None:
        seq_o, state_o = reference.run(spec, seq_in, state_in, consts, tiles, seq_out_dtypes, state_out_dtypes)
    else:
        seq_o, state_o = kernels.run(spec, target, seq_in, state_in, consts, tiles, seq_out_dtypes,
                                     state_out_dtypes, block_sizes)
    return [*seq_o, *state_o]


def _lower(name, platform, ctx, *args, **params):
    """Lower one call: the jnp reference, or the kernel, which partitions itself per population shard
    under automatic mesh axes (``partitioning``)."""
    def run(*ops):
        with abstract_gpu() if platform == "cuda" else contextlib.nullcontext():
            return _run(name, ops, platform, **params)

    target = _kernel_target(name, ctx.avals_in, platform, **params)
    roles, n_seq_out, n_out = _roles(spec_of(name, params)), len(params["seq_out_dtypes"]), len(ctx.avals_out)
    if partitioning.explicit_layout(ctx.avals_in, roles) is not None:  # kernel or reference, per shard
        run = partitioning.per_shard_explicit(run, ctx.avals_in, roles, n_seq_out, n_out)
    elif target == "tpu":
        partitioning.check_tpu_context(ctx)
    elif target is not None and platform in partitioning.AUTO_AXES_PLATFORMS and partitioning.automatic(ctx):
        run = partitioning.per_shard(run, roles, n_seq_out, n_out, ctx.avals_out[-1].ndim)
    return mlir.lower_fun(run, multiple_results=True)(ctx, *args)


def _abstract(name, *avals, seq_out_dtypes, state_out_dtypes, **kw):
    spec = spec_of(name, kw)
    T = avals[0].shape[0]
    pop = avals[spec.n_seq_in].shape
    outs = ([jax.core.ShapedArray((T, *pop), d) for d in seq_out_dtypes]
            + [jax.core.ShapedArray(pop, d) for d in state_out_dtypes])
    return partitioning.sharded_avals(avals, _roles(spec), outs, len(seq_out_dtypes))


def _roles(spec):
    """Per operand: 'seq' (time-major), 'state' (per neuron: states and parameters) or 'tile' (scalar)."""
    return ["seq"] * spec.n_seq_in + ["state"] * (spec.n_state + spec.n_consts) + ["tile"] * spec.n_tiles


def _batch(prim, name, args, dims, **params):
    roles = _roles(spec_of(name, params))
    size = next(a.shape[d] for a, d in zip(args, dims) if d is not None)
    if any(r == "tile" and d is not None for r, d in zip(roles, dims)):
        # a vmapped scalar (e.g. t): one call per batch element
        moved = [a if d is None else jnp.moveaxis(a, d, 0) for a, d in zip(args, dims)]
        mapped = [d is not None for d in dims]

        def one(xs):
            it = iter(xs)
            return prim.bind(*[next(it) if m else a for a, m in zip(moved, mapped)], **params)

        outs = lax.map(one, [a for a, m in zip(moved, mapped) if m])
        n_seq_out = len(params["seq_out_dtypes"])
        return [jnp.moveaxis(o, 0, 1) if i < n_seq_out else o for i, o in enumerate(outs)], \
            [1] * n_seq_out + [0] * (len(outs) - n_seq_out)
    new = []
    for a, d, r in zip(args, dims, roles):
        if r == "tile":
            new.append(a)
            continue
        axis = 1 if r == "seq" else 0
        if d is None:
            shape = list(a.shape)
            shape.insert(axis, size)
            a = jnp.broadcast_to(jnp.expand_dims(a, axis), shape)
        else:
            a = jnp.moveaxis(a, d, axis)
        new.append(a)
    outs = prim.bind(*new, **params)
    n_seq_out = len(params["seq_out_dtypes"])
    return outs, [1] * n_seq_out + [0] * (len(outs) - n_seq_out)


def _make(name):
    p = Primitive(name)
    p.multiple_results = True
    p.def_impl(functools.partial(dispatch.apply_primitive, p))
    p.def_abstract_eval(functools.partial(_abstract, name))
    for platform in ("cpu", "cuda", "rocm", "tpu"):
        mlir.register_lowering(p, functools.partial(_lower, name, platform),
                               platform=None if platform == "cpu" else platform)
    batching.primitive_batchers[p] = functools.partial(_batch, p, name)
    # the partitioner's callback needs the devices at lowering time (as for JAX's cuDNN attention)
    dispatch.prim_requires_devices_during_lowering.add(p)
    return p


def bind(p, *operands, **params):
    """``p.bind``, except for ``backend="interpret_tpu"``: the race-detecting TPU interpreter runs
    on ordered IO callbacks, which cannot live inside a primitive's lowering, so that checking
    backend calls the kernel directly (forward only, no JAX transformations)."""
    if params["backend"] == "interpret_tpu":
        if any(isinstance(x, jax.core.Tracer) for x in operands):
            raise ValueError("backend='interpret_tpu' runs the race-detecting TPU interpreter eagerly: forward "
                             "only, outside jit, grad, jvp and vmap; under transformations use "
                             "backend='interpret' (or 'pallas' on a TPU)")
        return _run(p.name, operands, "cpu", **params)
    return p.bind(*operands, **params)


lif_train_fwd_p = _make("lif_train_fwd")
lif_train_tan_p = _make("lif_train_tan")
lif_train_bwd_p = _make("lif_train_bwd")


# ----------------------------------------------------------------------------- AD
def _tangent_of(x, like_dtype):
    if jnp.issubdtype(jnp.dtype(like_dtype), jnp.floating):
        return x.astype(like_dtype)
    return jnp.zeros(x.shape, jax.dtypes.float0)


def _derivative_params(params, layout, seq_out_dtype, state_out_dtypes):
    keep = ("lif", "backend", "gpu_backend", "block_sizes")
    return dict({k: params[k] for k in keep}, layout=layout, seq_out_dtypes=(seq_out_dtype,),
                state_out_dtypes=tuple(state_out_dtypes))


def _train_fwd_jvp(primals, tangents, **params):
    neuron, layout = params["lif"], params["layout"]
    spec = spec_of("lif_train_fwd", params)
    (j,), S0, consts, tiles = _split(spec, primals)
    (dj,), dS0, dconsts, dtiles = _split(spec, tangents)
    # the parameters whose tangents are not symbolic zeros are the ones the derivative kernels learn
    p_tangents = dict(zip(layout.consts + layout.tiles, (*dconsts, *dtiles)))
    learn = tuple(n for n in layout.consts + layout.tiles if type(p_tangents[n]) is not ad.Zero)
    layout = dataclasses.replace(layout, learn=learn)
    s_dtype = params["seq_out_dtypes"][0]
    res_dtypes = specs.residual_dtypes(neuron, layout, params["residual_dtype"])
    full = dict(params, layout=layout, save_residuals=True,
                seq_out_dtypes=(s_dtype, *res_dtypes, *params["seq_out_dtypes"][1:]))
    outs = lif_train_fwd_p.bind(*primals, **full)
    n_res, n_seq_out = len(res_dtypes), len(full["seq_out_dtypes"])
    s, res, rest, S_T = outs[0], outs[1:1 + n_res], outs[1 + n_res:n_seq_out], outs[n_seq_out:]
    if derive.residual_plan(neuron, layout).input:
        res = (*res, j)  # the derivative re-reads the input: nothing more is written
    pop = j.shape[1:]
    dj, *dS0 = (ad.instantiate_zeros(t) for t in (dj, *dS0))
    dP = [jnp.broadcast_to(ad.instantiate_zeros(p_tangents[n]).astype(jnp.float32), pop) for n in learn]
    # the spikes' tangent in their own float dtype: its cotangent then reaches the backward kernel
    # as it comes (2 B per neuron-step in bf16), with no conversion pass in front of it
    ds_dtype = s_dtype if jnp.issubdtype(s_dtype, jnp.floating) else jnp.dtype(jnp.float32)
    tan = lif_train_tan_p.bind(*res, dj, *dS0, *consts, *dP, *tiles,
                               **_derivative_params(params, layout, ds_dtype, [x.dtype for x in S0]))
    ds, dS_T = tan[0], tan[1:]
    tangent_out = [_tangent_of(ds, s_dtype)] + [jnp.zeros_like(o) for o in rest] + list(dS_T)
    return [s, *rest, *S_T], tangent_out


ad.primitive_jvps[lif_train_fwd_p] = _train_fwd_jvp


def _aval(x):
    return x.aval if ad.is_undefined_primal(x) else jax.typeof(x)


def _ct(ct, aval, dtype=None):
    return jnp.zeros(aval.shape, dtype or aval.dtype) if type(ct) is ad.Zero else ct


def _tan_transpose(cts, *operands, **params):
    """The tangent kernel is linear in (dj, dS_0, dP); its transpose is the reverse-time backward."""
    spec = spec_of("lif_train_tan", params)
    layout = params["layout"]
    seq, dS0, consts, tiles = _split(spec, operands)
    res, u_j = seq[:-1], seq[-1]
    n_c = len(layout.consts)
    P_consts, dL = consts[:n_c], consts[n_c:]
    pop, j_aval = _aval(dS0[0]).shape, _aval(u_j)
    ct_ds, *ct_dS = cts
    ct_ds = _ct(ct_ds, jax.core.ShapedArray((j_aval.shape[0], *pop), jnp.float32))
    ct_dS = [_ct(c, _aval(u)) for c, u in zip(ct_dS, dS0)]
    acc0 = [jnp.zeros(pop, jnp.float32) for _ in layout.learn]
    outs = lif_train_bwd_p.bind(*res, ct_ds, *ct_dS, *acc0, *P_consts, *tiles,
                                **_derivative_params(params, layout, j_aval.dtype,
                                                     [_aval(u).dtype for u in dS0] + [jnp.float32] * len(acc0)))
    g_j, g_S, g_L = outs[0], outs[1:1 + len(dS0)], outs[1 + len(dS0):]
    keep = lambda g, u: g.astype(_aval(u).dtype) if ad.is_undefined_primal(u) else None
    return ([None] * len(res) + [keep(g_j, u_j)] + [keep(g, u) for g, u in zip(g_S, dS0)] + [None] * n_c
            + [keep(g, u) for g, u in zip(g_L, dL)] + [None] * len(tiles))


def _bwd_transpose(cts, *operands, **params):
    """The backward is linear in (dL/ds, dL/dS_T, the accumulators); its transpose is the tangent kernel."""
    spec = spec_of("lif_train_bwd", params)
    layout = params["layout"]
    seq, state, P_consts, tiles = _split(spec, operands)
    res, u_gs = seq[:-1], seq[-1]
    n_st = len(state) - len(layout.learn)
    u_gS, u_acc = state[:n_st], state[n_st:]
    ct_gj, *ct_rest = cts
    pop, T = _aval(state[0]).shape, _aval(u_gs).shape[0]
    ct_gj = _ct(ct_gj, jax.core.ShapedArray((T, *pop), jnp.float32))
    ct_gS = [_ct(c, _aval(u)) for c, u in zip(ct_rest[:n_st], u_gS)]
    ct_gL = [_ct(c, _aval(u)) for c, u in zip(ct_rest[n_st:], u_acc)]
    outs = lif_train_tan_p.bind(*res, ct_gj, *ct_gS, *P_consts, *ct_gL, *tiles,
                                **_derivative_params(params, layout, _aval(u_gs).dtype, [_aval(u).dtype for u in u_gS]))
    ds, dS = outs[0], outs[1:]
    keep = lambda g, u: g.astype(_aval(u).dtype) if ad.is_undefined_primal(u) else None
    return ([None] * len(res) + [keep(ds, u_gs)] + [keep(g, u) for g, u in zip(dS, u_gS)]
            + [keep(g, u) for g, u in zip(ct_gL, u_acc)] + [None] * (len(P_consts) + len(tiles)))


ad.primitive_transposes[lif_train_tan_p] = _tan_transpose
ad.primitive_transposes[lif_train_bwd_p] = _bwd_transpose
