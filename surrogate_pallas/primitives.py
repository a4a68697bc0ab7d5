"""JAX primitives for the fused LIF kernels.

Three primitives share one factory: ``neuron_forward`` (a neuron over T steps:
a preset, ngclearn's cell or a user's ``Neuron``), and the two linear maps of
its derivative, ``neuron_tangent`` (forward mode) and ``neuron_backward``
(reverse mode, reverse time).  ``lif_step`` is the T = 1 case of these.

Each has an abstract eval and one lowering per platform, which runs what the
backend table (``backends.py``) names for its ``backend`` parameter there: the
jnp reference, or a kernel (``cuda``: Pallas Triton or Mosaic GPU; ``tpu``:
Pallas Mosaic).  Batching folds the vmapped axis
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

from . import backends, kernels, partitioning
from ._gpu_lowering import abstract_gpu
from .derivation import kernel_spec, reference, residuals
from .derivation.kernel_spec import BACKWARD, FORWARD, TANGENT

# ----------------------------------------------------------------------------- specs from params
_SPEC_KEYS = ("neuron", "placement", "with_surrogate", "save_residuals", "residual_dtype")


@functools.lru_cache(maxsize=1024)
def _cached_spec(name, key):
    kw = dict(key)
    neuron, placement = kw["neuron"], kw["placement"]
    if name == FORWARD:
        return kernel_spec.forward_spec(neuron, placement, kw["save_residuals"], kw["residual_dtype"],
                                        kw["with_surrogate"])
    if name == BACKWARD:
        return kernel_spec.backward_spec(neuron, placement)
    return kernel_spec.tangent_spec(neuron, placement)


def spec_of(name, params):
    """The ``KernelSpec`` a call of primitive ``name`` with these parameters runs (built once)."""
    return _cached_spec(name, tuple((k, params[k]) for k in _SPEC_KEYS if k in params))


def _split(spec, operands):
    """(seq, state, per-neuron, scalar) operands."""
    i = 0
    out = []
    for n in (spec.n_seq_in, spec.n_state, spec.n_per_neuron, spec.n_scalars):
        out.append(tuple(operands[i:i + n]))
        i += n
    return out


def _kernel_target(name, avals, platform, backend="auto", gpu_backend="triton", **params):
    """The kernel target this call runs on, or None where the jnp reference runs."""
    spec = spec_of(name, params)
    if avals[0].shape[0] == 0 or avals[spec.n_seq_in].size == 0:
        return None
    return backends.kernel_target(backend, gpu_backend, platform)


def _run(name, operands, platform, *, seq_out_dtypes, state_out_dtypes, backend="auto",
         gpu_backend="triton", block_sizes=None, **spec_kw):
    spec = spec_of(name, spec_kw)
    seq_in, state_in, per_neuron, scalars = _split(spec, operands)
    target = _kernel_target(name, operands, platform, backend, gpu_backend, **spec_kw)
    if target is None:
        seq_o, state_o = reference.run(spec, seq_in, state_in, per_neuron, scalars, seq_out_dtypes,
                                       state_out_dtypes)
    else:
        seq_o, state_o = kernels.run(spec, target, seq_in, state_in, per_neuron, scalars, seq_out_dtypes,
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
    if partitioning.explicit_mesh_spec(ctx.avals_in, roles) is not None:  # kernel or reference, per shard
        run = partitioning.explicit_axes_per_shard(run, ctx.avals_in, roles, n_seq_out, n_out)
    elif target == "tpu":
        partitioning.check_tpu_context(ctx)
    elif target is not None and platform in partitioning.AUTO_AXES_PLATFORMS and partitioning.automatic(ctx):
        run = partitioning.auto_axes_per_shard(run, roles, n_seq_out, n_out, ctx.avals_out[-1].ndim)
    return mlir.lower_fun(run, multiple_results=True)(ctx, *args)


def _abstract(name, *avals, seq_out_dtypes, state_out_dtypes, **kw):
    spec = spec_of(name, kw)
    T = avals[0].shape[0]
    pop = avals[spec.n_seq_in].shape
    outs = ([jax.core.ShapedArray((T, *pop), d) for d in seq_out_dtypes]
            + [jax.core.ShapedArray(pop, d) for d in state_out_dtypes])
    return partitioning.sharded_avals(avals, _roles(spec), outs, len(seq_out_dtypes))


def _roles(spec):
    """Per operand: 'seq' (time-major), 'state' (per neuron: states and parameters) or 'scalar'."""
    return ["seq"] * spec.n_seq_in + ["state"] * (spec.n_state + spec.n_per_neuron) + ["scalar"] * spec.n_scalars


def _batch(prim, name, args, dims, **params):
    roles = _roles(spec_of(name, params))
    size = next(a.shape[d] for a, d in zip(args, dims) if d is not None)
    if any(r == "scalar" and d is not None for r, d in zip(roles, dims)):
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
        if r == "scalar":
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


forward_p = _make(FORWARD)
tangent_p = _make(TANGENT)
backward_p = _make(BACKWARD)


# ----------------------------------------------------------------------------- AD
def _tangent_of(x, like_dtype):
    if jnp.issubdtype(jnp.dtype(like_dtype), jnp.floating):
        return x.astype(like_dtype)
    return jnp.zeros(x.shape, jax.dtypes.float0)


def _derivative_params(params, placement, seq_out_dtype, state_out_dtypes):
    keep = ("neuron", "backend", "gpu_backend", "block_sizes")
    return dict({k: params[k] for k in keep}, placement=placement, seq_out_dtypes=(seq_out_dtype,),
                state_out_dtypes=tuple(state_out_dtypes))


def _forward_jvp(primals, tangents, **params):
    neuron, placement = params["neuron"], params["placement"]
    spec = spec_of(FORWARD, params)
    (j,), S0, per_neuron, scalars = _split(spec, primals)
    (dj,), dS0, dper_neuron, dscalars = _split(spec, tangents)
    # the parameters whose tangents are not symbolic zeros are the ones the derivative kernels learn
    p_tangents = dict(zip(placement.per_neuron + placement.scalars, (*dper_neuron, *dscalars)))
    learn = tuple(n for n in placement.per_neuron + placement.scalars if type(p_tangents[n]) is not ad.Zero)
    placement = dataclasses.replace(placement, learn=learn)
    s_dtype = params["seq_out_dtypes"][0]
    res_dtypes = residuals.residual_dtypes(neuron, placement, params["residual_dtype"])
    full = dict(params, placement=placement, save_residuals=True,
                seq_out_dtypes=(s_dtype, *res_dtypes, *params["seq_out_dtypes"][1:]))
    outs = forward_p.bind(*primals, **full)
    n_res, n_seq_out = len(res_dtypes), len(full["seq_out_dtypes"])
    s, res, rest, S_T = outs[0], outs[1:1 + n_res], outs[1 + n_res:n_seq_out], outs[n_seq_out:]
    if residuals.residual_plan(neuron, placement).input:
        res = (*res, j)  # the derivative re-reads the input: nothing more is written
    pop = j.shape[1:]
    dj, *dS0 = (ad.instantiate_zeros(t) for t in (dj, *dS0))
    dP = [jnp.broadcast_to(ad.instantiate_zeros(p_tangents[n]).astype(jnp.float32), pop) for n in learn]
    # the spikes' tangent in their own float dtype: its cotangent then reaches the backward kernel
    # as it comes (2 B per neuron-step in bf16), with no conversion pass in front of it
    ds_dtype = s_dtype if jnp.issubdtype(s_dtype, jnp.floating) else jnp.dtype(jnp.float32)
    tan = tangent_p.bind(*res, dj, *dS0, *per_neuron, *dP, *scalars,
                               **_derivative_params(params, placement, ds_dtype, [x.dtype for x in S0]))
    ds, dS_T = tan[0], tan[1:]
    tangent_out = [_tangent_of(ds, s_dtype)] + [jnp.zeros_like(o) for o in rest] + list(dS_T)
    return [s, *rest, *S_T], tangent_out


ad.primitive_jvps[forward_p] = _forward_jvp


def _aval(x):
    return x.aval if ad.is_undefined_primal(x) else jax.typeof(x)


def _ct(ct, aval, dtype=None):
    return jnp.zeros(aval.shape, dtype or aval.dtype) if type(ct) is ad.Zero else ct


def _tan_transpose(cts, *operands, **params):
    """The tangent kernel is linear in (dj, dS_0, dP); its transpose is the reverse-time backward."""
    spec = spec_of(TANGENT, params)
    placement = params["placement"]
    seq, dS0, per_neuron, scalars = _split(spec, operands)
    res, u_j = seq[:-1], seq[-1]
    n_c = len(placement.per_neuron)
    P_per_neuron, dL = per_neuron[:n_c], per_neuron[n_c:]
    pop, j_aval = _aval(dS0[0]).shape, _aval(u_j)
    ct_ds, *ct_dS = cts
    ct_ds = _ct(ct_ds, jax.core.ShapedArray((j_aval.shape[0], *pop), jnp.float32))
    ct_dS = [_ct(c, _aval(u)) for c, u in zip(ct_dS, dS0)]
    acc0 = [jnp.zeros(pop, jnp.float32) for _ in placement.learn]
    outs = backward_p.bind(*res, ct_ds, *ct_dS, *acc0, *P_per_neuron, *scalars,
                                **_derivative_params(params, placement, j_aval.dtype,
                                                     [_aval(u).dtype for u in dS0] + [jnp.float32] * len(acc0)))
    g_j, g_S, g_L = outs[0], outs[1:1 + len(dS0)], outs[1 + len(dS0):]
    keep = lambda g, u: g.astype(_aval(u).dtype) if ad.is_undefined_primal(u) else None
    return ([None] * len(res) + [keep(g_j, u_j)] + [keep(g, u) for g, u in zip(g_S, dS0)] + [None] * n_c
            + [keep(g, u) for g, u in zip(g_L, dL)] + [None] * len(scalars))


def _bwd_transpose(cts, *operands, **params):
    """The backward is linear in (dL/ds, dL/dS_T, the accumulators); its transpose is the tangent kernel."""
    spec = spec_of(BACKWARD, params)
    placement = params["placement"]
    seq, state, P_per_neuron, scalars = _split(spec, operands)
    res, u_gs = seq[:-1], seq[-1]
    n_st = len(state) - len(placement.learn)
    u_gS, u_acc = state[:n_st], state[n_st:]
    ct_gj, *ct_rest = cts
    pop, T = _aval(state[0]).shape, _aval(u_gs).shape[0]
    ct_gj = _ct(ct_gj, jax.core.ShapedArray((T, *pop), jnp.float32))
    ct_gS = [_ct(c, _aval(u)) for c, u in zip(ct_rest[:n_st], u_gS)]
    ct_gL = [_ct(c, _aval(u)) for c, u in zip(ct_rest[n_st:], u_acc)]
    outs = tangent_p.bind(*res, ct_gj, *ct_gS, *P_per_neuron, *ct_gL, *scalars,
                                **_derivative_params(params, placement, _aval(u_gs).dtype, [_aval(u).dtype for u in u_gS]))
    ds, dS = outs[0], outs[1:]
    keep = lambda g, u: g.astype(_aval(u).dtype) if ad.is_undefined_primal(u) else None
    return ([None] * len(res) + [keep(ds, u_gs)] + [keep(g, u) for g, u in zip(dS, u_gS)]
            + [keep(g, u) for g, u in zip(ct_gL, u_acc)] + [None] * (len(P_per_neuron) + len(scalars)))


ad.primitive_transposes[tangent_p] = _tan_transpose
ad.primitive_transposes[backward_p] = _bwd_transpose
