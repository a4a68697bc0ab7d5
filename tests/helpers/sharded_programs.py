"""The programs the sharding tests partition: every op and transformation, elementwise end to end
(no reduction, so a correctly partitioned program has no collective at all)."""
import re

import jax
import jax.numpy as jnp
import numpy as np

import surrogate_pallas as sp

COLLECTIVES = re.compile(r"\b(all-gather|all-to-all|all-reduce|collective-permute|reduce-scatter)")
T, B, N = 8, 8, 512
# mesh layouts: name -> (mesh shape, axis names, the population's partition spec [B, N])
LAYOUTS = {"(8,) neurons": ((8,), ("n",), (None, "n")), "(8,) batch": ((8,), ("b",), ("b", None)),
           "(2,4) batch+neurons": ((2, 4), ("b", "n"), ("b", "n")),
           "(4,2) batch+neurons": ((4, 2), ("b", "n"), ("b", "n"))}
BACKENDS, AXES = ("xla", "interpret"), ("auto", "explicit")
KINDS = ("no collectives", "equals one device", "output shardings")


def runs_on(program, layout):
    """fwd and grad run on every layout; the other programs on the two-axis one."""
    return program in ("fwd", "grad") or layout == "(2,4) batch+neurons"


def program_names(p):
    return ("fwd", "step") if p.is_cell else ("fwd", "step", "grad", "jvp", "vmap")


def case_names():
    """Every check ``sharded_checks`` prints, in order: one test id each."""
    out = []
    for mname, p in models().items():
        for backend in BACKENDS:
            for axes in AXES:
                for lname in LAYOUTS:
                    for k in program_names(p):
                        if runs_on(k, lname):
                            out += [f"{kind}: {mname} {backend} {axes} {k} {lname}" for kind in KINDS]
    out += [f"per-device memory ~1/8, {axes} axes" for axes in AXES]
    out += ["time-sharded input gives the same result", "time-sharded input, automatic axes, gives the same result"]
    out += [f"{kind}: {f}" for f in ("spike", "spike_and_grad", "spike vjp") for kind in KINDS]
    return out + ["lif_step eager sharded"]


def models():
    rng = np.random.default_rng(0)
    return {
        "sj": sp.presets.spikingjelly(),
        "snn_zero": sp.presets.snntorch_leaky(0.9, reset_mechanism="zero"),
        "cell": sp.presets.ngclearn(tau_m=rng.uniform(5, 15, (B, N)), refract_time=2.0),
    }


def programs(p, backend):
    """name -> (fn(j, v), expected output roles: 'seq' [T, B, N] or 'row' [B, N])."""
    st0 = p.init_state((B, N))

    def fwd(j, v):
        st, out = sp.lif_sequence(j, st0._replace(v=v), p, backend=backend, with_surrogate=True)
        return out.s, out.surrogate, st.v

    def step(j, v):
        st, out = sp.lif_step(st0._replace(v=v), j[0], p, backend=backend)
        return out.s, out.surrogate, st.v

    progs = {"fwd": (fwd, ["seq", "seq", "row"]), "step": (step, ["row"] * 3)}
    if p.is_cell:
        return {k: progs[k] for k in program_names(p)}

    def vjp(j, v):  # the backward with elementwise cotangents: no reduction anywhere
        out, pull = jax.vjp(lambda j, v: fwd(j, v)[::2], j, v)
        return pull((out[0] * 0.5 + 1.0, jnp.cos(out[1])))

    def jvp(j, v):
        (s, _, vT), (ds, _, dvT) = jax.jvp(fwd, (j, v), (jnp.sin(j), v + 1.0))
        return s, vT, ds, dvT

    def vmapped(j, v):  # one population of N per batch element, batched by vmap
        one = lambda j, v: sp.lif_sequence(j, p.init_state((N,))._replace(v=v), p, backend=backend)
        st, out = jax.vmap(one, in_axes=(1, 0), out_axes=(0, 1))(j, v)
        return out.s, st.v

    progs.update({"grad": (vjp, ["seq", "row"]), "jvp": (jvp, ["seq", "row", "seq", "row"]),
                  "vmap": (vmapped, ["seq", "row"])})
    return {k: progs[k] for k in program_names(p)}


def inputs(p):
    j = (0.6 + jax.random.normal(jax.random.PRNGKey(0), (T, B, N))) * (25.0 if p.is_cell else 1.0)
    return j, p.init_state((B, N)).v
