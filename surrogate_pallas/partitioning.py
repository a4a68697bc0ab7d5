"""The kernels partition themselves under plain ``jit`` with automatic mesh axes.

A Pallas call is opaque to XLA's partitioner: left alone, a population sharded over
devices is all-gathered onto every device and each device runs the whole population.
The LIF ops are elementwise over neurons and sequential over time, so every primitive's
kernel lowering is wrapped in ``custom_partitioning`` with a Shardy rule

    seq operands ``t p0 p1 ...``, per-neuron operands ``p0 p1 ...``, scalars ``()``
    -> the same for the results, with ``t`` needing replication,

and a partition callback that runs the kernel on each device's own shard.  Any
population sharding (batch dims included, any number of mesh axes) then runs with no
collectives; a time-sharded input is resharded once to whole sequences.

TPU is the exception, in one place (``AUTO_AXES_PLATFORMS``): XLA:TPU has no emitter for
the partitioner's custom call yet (jax-ml/jax#38196), so an automatic-axes multi-chip
program cannot reach a Mosaic kernel.  There the lowering raises ``AUTO_AXES_ERROR``,
which shows the explicit-axes change; explicit axes run per shard through ``shard_map``
(``sharding.py``) on every platform.  Once JAX routes ``custom_partitioning`` on TPU,
add ``"tpu"`` to ``AUTO_AXES_PLATFORMS`` and drop the error.
"""
from __future__ import annotations

import jax
from jax.experimental.custom_partitioning import SdyShardingRule, custom_partitioning
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

from .sharding import merge_specs, same_spec

AUTO_AXES_PLATFORMS = ("cpu", "cuda", "rocm")

AUTO_AXES_ERROR = """\
surrogate_pallas: this program is partitioned over {n} TPU chips with automatic mesh axes, and
XLA:TPU cannot yet partition a Pallas (Mosaic) kernel automatically (jax-ml/jax#38196).
Give the mesh explicit axes, and the kernels run per shard with no collectives:

    mesh = jax.make_mesh(shape, names, axis_types=(jax.sharding.AxisType.Explicit,) * len(names))
    jax.set_mesh(mesh)          # or: with jax.set_mesh(mesh): ...

and place the inputs with jax.device_put(x, NamedSharding(mesh, spec)) as before.
backend="xla" (the jnp reference) also partitions automatically."""


def _automatic_devices(ctx) -> int:
    """How many devices the partitioner spreads this lowering over with automatic axes (1: none)."""
    from jax._src import sharding_impls  # the lowering context's axis kinds have no public name
    axis = ctx.module_context.axis_context
    if isinstance(axis, sharding_impls.ShardingContext):
        return axis.num_devices
    if isinstance(axis, sharding_impls.SPMDAxisContext):
        manual = set(axis.manual_axes) | set(getattr(axis.mesh, "manual_axes", ()))
        if manual != set(axis.mesh.axis_names):
            return axis.mesh.size
    return 1


def automatic(ctx) -> bool:
    """True where the partitioner will split this call (and knows the devices, as under ``jit``)."""
    from jax._src import sharding_impls
    axis = ctx.module_context.axis_context
    if isinstance(axis, sharding_impls.ShardingContext) and axis.device_assignment is None:
        return False  # e.g. jax.export: no devices to partition over yet
    return _automatic_devices(ctx) > 1


def check_tpu_context(ctx) -> None:
    """Raise the explicit-axes advice for a Mosaic kernel lowered in an automatic multi-chip context."""
    n = _automatic_devices(ctx)
    if n > 1:
        raise NotImplementedError(AUTO_AXES_ERROR.format(n=n))


def _dims(roles, pop_rank):
    pop = tuple(f"p{i}" for i in range(pop_rank))
    return [{"seq": ("t", *pop), "state": pop, "scalar": ()}[r] for r in roles]


def out_roles(n_seq_out: int, n_out: int):
    return ["seq"] * n_seq_out + ["state"] * (n_out - n_seq_out)


def _specs(roles, spec):
    return [{"seq": P(None, *spec), "state": P(*spec), "scalar": P()}[r] for r in roles]


def explicit_mesh_spec(avals, roles):
    """(abstract mesh, population spec) when the operands carry explicit-axes shardings, else None."""
    found = [(a.sharding, a.ndim, r == "seq") for a, r in zip(avals, roles)
             if r != "scalar" and _explicit(getattr(a, "sharding", None))]
    if not found:
        return None
    pop_rank = next(a.ndim for a, r in zip(avals, roles) if r == "state")
    return found[0][0].mesh, merge_specs(found, pop_rank)


def _explicit(sharding) -> bool:
    return (isinstance(sharding, NamedSharding) and not sharding.mesh.empty
            and any(t == AxisType.Explicit for t in sharding.mesh.axis_types)
            and any(p is not None for p in sharding.spec))


def sharded_avals(avals, roles, outs, n_seq_out):
    """The result avals with the explicit-axes shardings the kernels give them (abstract eval)."""
    found = explicit_mesh_spec(avals, roles)
    if found is None:
        return outs
    mesh, spec = found
    return [o.update(sharding=NamedSharding(mesh, s))
            for o, s in zip(outs, _specs(out_roles(n_seq_out, len(outs)), spec))]


def explicit_axes_per_shard(fn, avals, roles, n_seq_out: int, n_out: int):
    """``fn`` under ``shard_map`` over the operands' explicit mesh axes: each device runs the kernel
    on its own shard.  Operands laid out otherwise (an unsharded state, a time-sharded current, a
    cotangent from elsewhere) are resharded to the population layout first."""
    mesh, spec = explicit_mesh_spec(avals, roles)
    in_specs, o_specs = _specs(roles, spec), _specs(out_roles(n_seq_out, n_out), spec)
    mapped = jax.shard_map(lambda *ops: tuple(fn(*ops)), mesh=mesh, in_specs=tuple(in_specs),
                           out_specs=tuple(o_specs), check_vma=False)

    def run(*ops):
        placed = [x if same_spec(jax.typeof(x).sharding.spec, s, x.ndim) else jax.reshard(x, NamedSharding(mesh, s))
                  for x, s in zip(ops, in_specs)]
        return mapped(*placed)
    return run


def auto_axes_per_shard(fn, roles, n_seq_out: int, n_out: int, pop_rank: int):
    """``fn(*operands) -> outputs`` wrapped so that the partitioner runs it per population shard.

    roles: per operand, ``"seq"`` ([T, *pop]), ``"state"`` ([*pop]) or ``"scalar"`` (a scalar);
    the first ``n_seq_out`` of the ``n_out`` results are [T, *pop], the others [*pop].
    """
    results = out_roles(n_seq_out, n_out)
    rule = SdyShardingRule(tuple(_dims(roles, pop_rank)), tuple(_dims(results, pop_rank)),
                           need_replication_factors=("t",))

    def shardings(mesh, arg_shapes):
        spec = population_spec(arg_shapes, roles, pop_rank)
        return (tuple(NamedSharding(mesh, s) for s in _specs(roles, spec)),
                tuple(NamedSharding(mesh, s) for s in _specs(results, spec)))

    def partition(mesh, arg_shapes, result_shape):
        args, outs = shardings(mesh, arg_shapes)
        return mesh, lambda *ops: tuple(fn(*ops)), outs, args

    def infer(mesh, arg_shapes, result_shape):  # the GSPMD partitioner (Shardy off) asks this
        return shardings(mesh, arg_shapes)[1]

    wrapped = custom_partitioning(lambda *ops: tuple(fn(*ops)))
    wrapped.def_partition(partition=partition, infer_sharding_from_operands=infer,
                          sharding_rule=rule,
                          propagate_user_sharding=lambda mesh, user_shape: user_shape.sharding)
    return wrapped


def population_spec(arg_shapes, roles, pop_rank: int):
    """Per population dim, the mesh axes of the first operand sharded there (time dropped); one mesh
    axis shards one dim."""
    found = [(s.sharding, len(s.shape), r == "seq") for s, r in zip(arg_shapes, roles)
             if r != "scalar" and isinstance(getattr(s, "sharding", None), NamedSharding)]
    return merge_specs(found, pop_rank)

