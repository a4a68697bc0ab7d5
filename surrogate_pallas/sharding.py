"""Sharded populations: run the kernels per shard with ``shard_map``.

A Pallas call is opaque to XLA's partitioner: under ``jit`` a population
sharded over devices would be all-gathered onto every device.  The LIF ops
are elementwise over neurons, so each device can run the kernel on its own
shard.  ``lif_sequence``/``lif_step`` read the shardings of their inputs (on
the avals with explicit mesh axes, ``jax.make_mesh``'s default, or on
concrete arrays) and wrap themselves in ``shard_map`` over the population
axes.  The time axis is sequential: an input sharded along time is resharded
once to whole sequences.
"""
from __future__ import annotations

import jax
from jax.sharding import NamedSharding, PartitionSpec as P


def _sharding(x):
    """A traced value's sharding lives on its aval (explicit mesh axes); a concrete array's on itself."""
    sh = getattr(jax.typeof(x), "sharding", None) if isinstance(x, jax.core.Tracer) else getattr(x, "sharding", None)
    return sh if isinstance(sh, NamedSharding) and _nontrivial(sh) else None


def _nontrivial(sh):
    return sh.mesh.size > 1 and any(p is not None for p in sh.spec)


def population_sharding(seq, states):
    """(mesh, population spec) from the inputs' shardings, or None when nothing is sharded.

    seq: time-major arrays [T, *pop]; states: arrays [*pop].
    """
    mesh, spec = None, None
    for x, time_major in [(a, True) for a in seq] + [(a, False) for a in states]:
        sh = _sharding(x)
        if sh is None:
            continue
        parts = tuple(sh.spec) + (None,) * (x.ndim - len(sh.spec))
        parts = parts[1:] if time_major else parts
        if mesh is None:
            mesh, spec = sh.mesh, [None] * len(parts)
        for d, axes in enumerate(parts[:len(spec)]):
            if spec[d] is None and axes is not None:
                spec[d] = axes
    if mesh is None:
        return None
    used, out = set(), []
    for axes in spec:  # one mesh axis shards one population dim
        names = (axes,) if isinstance(axes, str) else tuple(axes or ())
        out.append(None if any(n in used for n in names) else axes)
        used.update(names)
    return mesh, tuple(out)


def _place(x, mesh, spec):
    target = NamedSharding(mesh, spec)
    current = _sharding(x)
    if current is not None and tuple(current.spec) + (None,) * (x.ndim - len(current.spec)) == \
            tuple(spec) + (None,) * (x.ndim - len(spec)):
        return x
    return jax.reshard(x, target) if isinstance(x, jax.core.Tracer) else jax.device_put(x, target)


def per_shard(fn, mesh, pop_spec, n_seq, n_state, n_scalar, n_seq_out, n_state_out):
    """``fn(*seq, *state, *scalars) -> (*seq_out, *state_out)`` run per population shard.

    Inputs not laid out that way (an unsharded state, a time-sharded current) are placed first.
    """
    seq, row = P(None, *pop_spec), P(*pop_spec)
    in_specs = (seq,) * n_seq + (row,) * n_state + (P(),) * n_scalar
    out_specs = (seq,) * n_seq_out + (row,) * n_state_out
    mapped = jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)
    return lambda *args: mapped(*(_place(a, mesh, s) for a, s in zip(args, in_specs)))
