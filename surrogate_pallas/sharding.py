"""Eager calls on sharded arrays: run the kernels per shard with ``shard_map``.

Traced calls partition at lowering (``partitioning.py``): ``custom_partitioning`` under
automatic mesh axes, ``shard_map`` under explicit ones.  A call on concrete sharded arrays
(outside ``jit``) is wrapped here in ``shard_map`` over the population axes, whatever its
mesh's axis kind, so that it also runs per shard on TPU, where automatic axes cannot reach a
Mosaic kernel.  The time axis is sequential: an input sharded along time is resharded once
to whole sequences.
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
    found = [(sh, x.ndim, time_major) for x, time_major in [(a, True) for a in seq] + [(a, False) for a in states]
             if (sh := _sharding(x)) is not None]
    if not found:
        return None
    return found[0][0].mesh, merge_specs(found, states[0].ndim if states else seq[0].ndim - 1)


def merge_specs(found, pop_rank):
    """The population spec from (sharding, ndim, time_major) triples: per population dim, the mesh axes
    of the first array sharded there (the time dim dropped); one mesh axis shards one dim."""
    spec = [None] * pop_rank
    for sh, ndim, time_major in found:
        parts = tuple(sh.spec) + (None,) * (ndim - len(sh.spec))
        for d, axes in enumerate((parts[1:] if time_major else parts)[:pop_rank]):
            if spec[d] is None and axes is not None:
                spec[d] = axes
    used, out = set(), []
    for axes in spec:
        names = (axes,) if isinstance(axes, str) else tuple(axes or ())
        out.append(None if any(n in used for n in names) else axes)
        used.update(names)
    return tuple(out)


def same_spec(a, b, ndim) -> bool:
    """Two partition specs of an ``ndim``-array place it alike (missing trailing dims are None)."""
    pad = lambda p: tuple(p) + (None,) * (ndim - len(p))
    return pad(a) == pad(b)


def _place(x, mesh, spec):
    target = NamedSharding(mesh, spec)
    current = _sharding(x)
    if current is not None and same_spec(current.spec, spec, x.ndim):
        return x
    return jax.reshard(x, target) if isinstance(x, jax.core.Tracer) else jax.device_put(x, target)


def eager_per_shard(fn, mesh, pop_spec, n_seq, n_state, n_scalar, n_seq_out, n_state_out):
    """``fn(*seq, *state, *scalars) -> (*seq_out, *state_out)`` run per population shard.

    Inputs not laid out that way (an unsharded state, a time-sharded current) are placed first.
    """
    seq, row = P(None, *pop_spec), P(*pop_spec)
    in_specs = (seq,) * n_seq + (row,) * n_state + (P(),) * n_scalar
    out_specs = (seq,) * n_seq_out + (row,) * n_state_out
    mapped = jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)
    return lambda *args: mapped(*(_place(a, mesh, s) for a, s in zip(args, in_specs)))
