"""Public LIF ops: ``lif_step`` and ``lif_sequence``."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import as_float_array, check_shape, spike_dtype as _spike_dtype
from .kernels import derive
from .kernels.derive import Layout
from .kernels.layout import BlockSizes
from .params import LIFOut, LIFParams, LIFState
from . import sharding
from .primitives import BACKENDS, GPU_BACKENDS, bind, lif_train_fwd_p

RESIDUALS = {"bf16": jnp.dtype(jnp.bfloat16), "exact": jnp.dtype(jnp.float32)}


def residual_mode(residuals: str, backend: str) -> str:
    """``"auto"``: bf16 where a kernel runs (it halves the bytes the backward reads on a GPU or
    TPU), exact where the jnp reference runs (``backend="xla"``, or ``"auto"`` on a CPU), since
    XLA:CPU spends longer converting to bf16 and back than the bytes save."""
    if residuals not in (*RESIDUALS, "auto"):
        raise ValueError(f"residuals: expected one of {('auto', *RESIDUALS)}, got {residuals!r}")
    if residuals != "auto":
        return residuals
    reference = backend == "xla" or (backend == "auto" and jax.default_backend() == "cpu")
    return "exact" if reference else "bf16"


def _check_common(params, backend, gpu_backend, block_sizes):
    if not isinstance(params, LIFParams):
        raise TypeError(f"params: expected a LIFParams (e.g. LIFParams.ngclearn(tau_m=10.0)), got {type(params).__name__}")
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if gpu_backend not in GPU_BACKENDS:
        raise ValueError(f"gpu_backend: expected one of {GPU_BACKENDS}, got {gpu_backend!r}")
    if block_sizes is not None and not isinstance(block_sizes, BlockSizes):
        raise TypeError(f"block_sizes: expected a BlockSizes, got {type(block_sizes).__name__}")


def _check_state(state, params, pop, what):
    if not isinstance(state, LIFState):
        raise TypeError(f"state: expected a LIFState (from params.init_state(shape)), got {type(state).__name__}")
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


def _per_neuron(name, value, pop):
    try:
        fits = np.broadcast_shapes(np.shape(value), pop) == tuple(pop)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"params.{name}: per-neuron shape {np.shape(value)} does not broadcast to the population "
                         f"shape {tuple(pop)}")
    return jnp.broadcast_to(jnp.asarray(value, jnp.float32), pop)


def _layout(params, pop, t0=0.0):
    """A neuron's step parameters as kernel operands: Python floats are constants of the kernel, 0-d
    arrays scalar operands, others per-neuron operands (broadcast to the population).  The cell's
    clock ``t0`` is a scalar operand, so a simulation loop compiles once for every ``t0``."""
    entries, consts, tiles = [], [], []
    values = params.step_values()
    if params.is_cell:
        values["t0"] = jnp.asarray(t0, jnp.float32)
    for name, value in values.items():
        if isinstance(value, (int, float)):
            entries.append((name, "static", float(value)))
        elif np.ndim(value) == 0:
            entries.append((name, "tile", None))
            tiles.append(jnp.asarray(value, jnp.float32))
        else:
            entries.append((name, "const", None))
            consts.append(_per_neuron(name, value, pop))
    order = {"static": 0, "const": 1, "tile": 2}
    ranked = sorted(range(len(entries)), key=lambda i: order[entries[i][1]])
    layout = Layout(tuple(entries[i] for i in ranked))
    derive.check_threshold(params.neuron, layout)
    return layout, consts, tiles


def lif_sequence(j_seq, state: LIFState, params: LIFParams, *, t0=0.0, backend: str = "auto",
                 gpu_backend: str = "triton", with_surrogate: bool = False, spike_dtype=None,
                 residuals: str = "auto", block_sizes: BlockSizes | None = None):
    """Run T steps in one time-fused kernel. ``j_seq`` is time-major ``[T, *population]``.

    Returns ``(state_T, LIFOut(s [T, ...], surrogate [T, ...] or None))``.

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
    layout, consts, tiles = _layout(params, pop, t0)

    def core(j_seq, *rest):
        return tuple(bind(lif_train_fwd_p, j_seq, *rest, lif=params.neuron, layout=layout, save_residuals=False,
                          residual_dtype=RESIDUALS[residuals], with_surrogate=bool(with_surrogate),
                          seq_out_dtypes=seq_out_dtypes, state_out_dtypes=state_out_dtypes, **common))
    args = (j_seq, *fields, *consts, *tiles)
    # traced values partition at lowering (partitioning.py); concrete sharded arrays run per shard here
    eager = not any(isinstance(x, jax.core.Tracer) for x in args)
    sharded = sharding.population_sharding([j_seq], [*fields, *consts]) if eager and backend != "interpret_tpu" \
        else None
    if sharded is not None:
        mesh, spec = sharded
        core = sharding.per_shard(core, mesh, spec, 1, len(fields) + len(consts), len(tiles), n_out,
                                  len(fields))
    outs = core(*args)
    return LIFState.of(dict(zip(params.state_fields, outs[n_out:]))), \
        LIFOut(outs[0], outs[1] if with_surrogate else None)


def lif_step(state: LIFState, j, params: LIFParams, *, t=0.0, backend: str = "auto", gpu_backend: str = "triton",
             spike_dtype=None, residuals: str = "auto", block_sizes: BlockSizes | None = None):
    """One fused step: reads the state and the current once, writes everything once.

    Returns ``(new_state, LIFOut(s, surrogate))``.  For the ngclearn cell,
    ``surrogate`` is ``d_spike_fx(v', v_thr) * resist_m*dt/tau_m`` on the
    pre-reset voltage (docs/numerics.md section 2); for the training presets it is ``sg(h - thr)``.
    ``residuals`` is what a derivative of the step keeps, as for ``lif_sequence``.
    """
    j = as_float_array(j, "j")
    if isinstance(state, LIFState) and state.v is not None and hasattr(state.v, "shape") \
            and tuple(state.v.shape) != tuple(j.shape):
        raise ValueError(f"j: expected shape {tuple(state.v.shape)} (the state's shape), got {tuple(j.shape)}")
    new_state, out = lif_sequence(j[None], state, params, t0=t, backend=backend, gpu_backend=gpu_backend,
                                  with_surrogate=True, spike_dtype=spike_dtype, residuals=residuals,
                                  block_sizes=block_sizes)
    return new_state, LIFOut(out.s[0], out.surrogate[0])
