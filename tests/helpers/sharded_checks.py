"""Sharding checks on 8 simulated CPU devices; run by ``sharding/test_sharding.py`` in a subprocess.

Prints one line per check, ``PASS <name>`` or ``FAIL <name>: <detail>``, for every name of
``sharded_programs.case_names()``, then ``ALL DONE``.  Usage: python -m helpers.sharded_checks
"""
import contextlib
import os
import sys

os.environ["JAX_PLATFORMS"] = "cpu"
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

import surrogate_pallas as sp  # noqa: E402

from helpers.sharded_programs import COLLECTIVES, LAYOUTS, inputs, models, programs, runs_on  # noqa: E402


def check(name, cond, detail=""):
    print(f"PASS {name}" if cond else f"FAIL {name}: {detail}", flush=True)


def same(a, b):
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def mesh_of(shape, names, axes):
    """A mesh with automatic axes (classic ``Mesh``, plain jit) or explicit ones (``jax.make_mesh``)."""
    if axes == "auto":
        return Mesh(np.array(jax.devices()).reshape(shape), names)
    return jax.make_mesh(shape, names, axis_types=(AxisType.Explicit,) * len(names))


def main():
    for mname, p in models().items():
        j, v0 = inputs(p)
        for backend in ("xla", "interpret"):
            progs = programs(p, backend)
            ref = {k: jax.jit(f)(j, v0) for k, (f, _) in progs.items()}
            for axes in ("auto", "explicit"):
                for lname, (shape, names, row) in LAYOUTS.items():
                    row = P(*row)
                    mesh = mesh_of(shape, names, axes)
                    seq = P(None, *row)
                    jS = jax.device_put(j, NamedSharding(mesh, seq))
                    vS = jax.device_put(v0, NamedSharding(mesh, row))
                    for k, (f, roles) in progs.items():
                        if not runs_on(k, lname):
                            continue
                        tag = f"{mname} {backend} {axes} {k} {lname}"
                        with jax.set_mesh(mesh) if axes == "explicit" else contextlib.nullcontext():
                            compiled = jax.jit(f).lower(jS, vS).compile()
                            out = compiled(jS, vS)
                        found = sorted(set(COLLECTIVES.findall(compiled.as_text())))
                        check(f"no collectives: {tag}", not found, found)
                        check(f"equals one device: {tag}", same(out, ref[k]))
                        want = [tuple(seq if r == "seq" else row) for r in roles]
                        got = [tuple(o.sharding.spec) + (None,) * (o.ndim - len(o.sharding.spec)) for o in out]
                        check(f"output shardings: {tag}", got == [w + (None,) * (o.ndim - len(w))
                                                                  for w, o in zip(want, out)], got)
    # memory: per-device footprint of the sharded program is ~1/8 of the unsharded one
    p = sp.presets.spikingjelly()
    Tm, Bm, Nm = 16, 8, 4096
    j = jnp.ones((Tm, Bm, Nm))
    v0 = jnp.zeros((Bm, Nm))
    f = programs(p, "interpret")["grad"][0]

    def footprint(c):
        m = c.memory_analysis()
        return m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes

    full = footprint(jax.jit(f).lower(j, v0).compile())
    for axes in ("auto", "explicit"):
        mesh = mesh_of((8,), ("n",), axes)
        jS = jax.device_put(j, NamedSharding(mesh, P(None, None, "n")))
        vS = jax.device_put(v0, NamedSharding(mesh, P(None, "n")))
        part = footprint(jax.jit(f).lower(jS, vS).compile())
        check(f"per-device memory ~1/8, {axes} axes", part <= full / 8 * 1.25, f"{part} vs {full}")
    # time-sharded input: resharded once to whole sequences, same result
    mesh = jax.make_mesh((8,), ("t",))
    jT = jax.device_put(j[:8], NamedSharding(mesh, P("t")))
    fwd = programs(p, "interpret")["fwd"][0]
    check("time-sharded input gives the same result", same(jax.jit(fwd)(jT, v0), fwd(j[:8], v0)))
    mesh = mesh_of((8,), ("t",), "auto")
    jT = jax.device_put(j[:8], NamedSharding(mesh, P("t")))
    check("time-sharded input, automatic axes, gives the same result", same(jax.jit(fwd)(jT, v0), fwd(j[:8], v0)))
    # spike / spike_and_grad partition natively (elementwise jnp)
    mesh = jax.make_mesh((2, 4), ("b", "n"))
    v = jax.device_put(jax.random.normal(jax.random.PRNGKey(1), (Bm, Nm)), NamedSharding(mesh, P("b", "n")))
    for fname, fn, has_spikes in [("spike", lambda v: sp.spike(v, 0.1), True),
                                  ("spike_and_grad", lambda v: sp.spike_and_grad(v, 0.1), True),
                                  ("spike vjp", lambda v: jax.vjp(lambda v: sp.spike(v, 0.1), v)[1](v), False)]:
        c = jax.jit(fn).lower(v).compile()
        out = c(v)
        check(f"no collectives: {fname}", not COLLECTIVES.findall(c.as_text()))
        want = fn(np.asarray(v))
        close = all(np.allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=0)
                    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(want)))
        # spikes bit-exact; sg to 1e-6 (two compilations may vectorise the division differently)
        exact = same(jax.tree.leaves(out)[0], jax.tree.leaves(want)[0]) if has_spikes else True
        check(f"equals one device: {fname}", close and exact)
        check(f"output shardings: {fname}", all(tuple(o.sharding.spec) == ("b", "n") for o in jax.tree.leaves(out)))
    # lif_step on a sharded population, eager (concrete arrays, any mesh type)
    pc = sp.presets.ngclearn(tau_m=10.0)
    st = jax.device_put(pc.init_state((Bm, Nm)), NamedSharding(mesh, P("b", "n")))
    jj = jax.device_put(jnp.full((Bm, Nm), 30.0), NamedSharding(mesh, P("b", "n")))
    out = sp.lif_step(st, jj, pc, backend="interpret")
    check("lif_step eager sharded", same(out, sp.lif_step(pc.init_state((Bm, Nm)), jnp.full((Bm, Nm), 30.0), pc))
          and tuple(out[0].v.sharding.spec) == ("b", "n"))
    print("ALL DONE", flush=True)


if __name__ == "__main__":
    sys.exit(main())
