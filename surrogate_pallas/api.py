"""Public LIF ops: ``lif_step`` and ``lif_sequence``."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from . import backends, sharding
from ._checks import as_float_array, check_shape, spike_dtype as _spike_dtype
from .derivation.placement import place
from .kernels.blocks import BlockSizes
from .neuron import NeuronOut, NeuronParams, NeuronState
from .primitives import bind, forward_p

RESIDUAL_DTYPES = {"bf16": jnp.dtype(jnp.bfloat16), "exact": jnp.dtype(jnp.float32)}


def residual_mode(residuals: str, backend: str) -> str:
    """The residual storage a call uses: ``"bf16"`` or ``"exact"``; ``"auto"`` is the backend's
    default (``backends.default_residuals``: bf16 where a kernel runs, exact on the jnp path)."""
    if residuals not in (*RESIDUAL_DTYPES, "auto"):
        raise ValueError(f"residuals: expected one of {('auto', *RESIDUAL_DTYPES)}, got {residuals!r}")
    return backends.default_residuals(backend) if residuals == "auto" else residuals


def _check_common(params, backend, gpu_backend, block_sizes):
    if not isinstance(params, NeuronParams):
        raise TypeError(f"params: expected a NeuronParams (e.g. presets.snntorch_leaky(beta=0.9)), got "
                        f"{type(params).__name__}")
    backends.check(backend, gpu_backend)
    if block_sizes is not None and not isinstance(block_sizes, BlockSizes):
        raise TypeError(f"block_sizes: expected a BlockSizes, got {type(block_sizes).__name__}")


def _check_state(state, params, pop, what):
    if not isinstance(state, NeuronState):
        raise TypeError(f"state: expected a NeuronState (from params.init_state(shape)), got {type(state).__name__}")
    fields = params.state_fields
    out = []
    for f in fields:
        x = state.field(f)
        if x is None:
            raise ValueError(f"state.{f}: missing; the {params.kind} model needs {', '.join(fields)} "
                             "(use params.init_state(shape))")
        x = as_float_array(x, f"state.{f}")
        check_shape(x, pop, f"state.{f}", what)
        out.append(x)
    return out


def lif_sequence(j_seq, state: NeuronState, params: NeuronParams, *, t0=0.0, backend: str = "auto",
                 gpu_backend: str = "triton", with_surrogate: bool = False, spike_dtype=None,
                 residuals: str = "auto", block_sizes: BlockSizes | None = None):
    """Run T steps in one time-fused kernel. ``j_seq`` is time-major ``[T, *population]``.

    Returns ``(state_T, NeuronOut(s [T, ...], surrogate [T, ...] or None))``.

    * ngclearn cell: equals T calls of ``lif_step`` (times ``t0 + k*dt``).
    * training presets: what snnTorch / SpikingJelly compute, forward and
      backward; ``jax.grad`` runs the fused reverse-time kernel.
      ``residuals="bf16"`` saves 2 bytes per neuron-step for the backward,
      ``"exact"`` saves f32, and ``"auto"`` (default) is bf16 where a kernel
      runs and exact where the jnp reference runs (``residual_mode``).
      snnTorch's zero reset also saves its 1-byte reset bit.
    * ``spike_dtype``: storage of ``s`` (default: ``j_seq``'s dtype); int8 spikes
      carry no gradient.
    """
    _check_common(params, backend, gpu_backend, block_sizes)
    j_seq = as_float_array(j_seq, "j_seq")
    if j_seq.ndim < 1:
        raise ValueError("j_seq: expected a time-major array [T, *population], got a scalar")
    pop = j_seq.shape[1:]
    fields = _check_state(state, params, pop, "j_seq.shape[1:]")
    s_dtype = _spike_dtype(spike_dtype, j_seq.dtype)
    residuals = residual_mode(residuals, backend)
    common = dict(backend=backend, gpu_backend=gpu_backend, block_sizes=block_sizes)
    n_out = 1 + bool(with_surrogate)
    seq_out_dtypes = (s_dtype,) + ((j_seq.dtype,) if with_surrogate else ())
    state_out_dtypes = tuple(f.dtype for f in fields)
    placement, per_neuron, scalars = place(params, pop, t0)

    def core(j_seq, *rest):
        return tuple(bind(forward_p, j_seq, *rest, neuron=params.neuron, placement=placement,
                          save_residuals=False, residual_dtype=RESIDUAL_DTYPES[residuals],
                          with_surrogate=bool(with_surrogate), seq_out_dtypes=seq_out_dtypes,
                          state_out_dtypes=state_out_dtypes, **common))
    args = (j_seq, *fields, *per_neuron, *scalars)
    # traced values partition at lowering (partitioning.py); concrete sharded arrays run per shard here
    eager = not any(isinstance(x, jax.core.Tracer) for x in args)
    sharded = sharding.population_sharding([j_seq], [*fields, *per_neuron]) \
        if eager and backend != "interpret_tpu" else None
    if sharded is not None:
        mesh, spec = sharded
        core = sharding.eager_per_shard(core, mesh, spec, 1, len(fields) + len(per_neuron), len(scalars), n_out,
                                        len(fields))
    outs = core(*args)
    return NeuronState.of(dict(zip(params.state_fields, outs[n_out:]))), \
        NeuronOut(outs[0], outs[1] if with_surrogate else None)


def lif_step(state: NeuronState, j, params: NeuronParams, *, t=0.0, backend: str = "auto", gpu_backend: str = "triton",
             spike_dtype=None, residuals: str = "auto", block_sizes: BlockSizes | None = None):
    """One fused step: reads the state and the current once, writes everything once.

    Returns ``(new_state, NeuronOut(s, surrogate))``.  For the ngclearn cell,
    ``surrogate`` is ``d_spike_fx(v', v_thr) * resist_m*dt/tau_m`` on the
    pre-reset voltage (docs/numerics.md section 2); for the training presets it is ``sg(h - thr)``.
    ``residuals`` is what a derivative of the step keeps, as for ``lif_sequence``.
    """
    j = as_float_array(j, "j")
    if isinstance(state, NeuronState) and state.v is not None and hasattr(state.v, "shape") \
            and tuple(state.v.shape) != tuple(j.shape):
        raise ValueError(f"j: expected shape {tuple(state.v.shape)} (the state's shape), got {tuple(j.shape)}")
    new_state, out = lif_sequence(j[None], state, params, t0=t, backend=backend, gpu_backend=gpu_backend,
                                  with_surrogate=True, spike_dtype=spike_dtype, residuals=residuals,
                                  block_sizes=block_sizes)
    return new_state, NeuronOut(out.s[0], out.surrogate[0])
