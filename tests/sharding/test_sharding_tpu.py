"""Sharding on the real TPU partitioner: libtpu compiles 4-chip v5e and v6e programs ahead of time.

With explicit mesh axes every program compiles, runs the Mosaic kernels per shard and has no
collective.  With automatic axes XLA:TPU cannot reach a Mosaic kernel (jax-ml/jax#38196), and
the program gets the library's explicit-axes advice instead of a compiler error.
"""
import jax
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

from helpers.sharded_programs import COLLECTIVES, inputs, models, programs
from surrogate_pallas import partitioning
from surrogate_pallas.tooling.aot import tpu

LAYOUTS = {"neurons": ((4,), ("n",), P(None, "n")), "batch+neurons": ((2, 2), ("b", "n"), P("b", "n"))}
CASES = [(gen, m, k, lay) for gen in ("v5e", "v6e") for m in ("sj", "snn_zero", "cell")
         for k in ("fwd", "grad", "jvp", "step", "vmap") for lay in LAYOUTS
         if not (m == "cell" and k in ("grad", "jvp", "vmap")) and (lay == "batch+neurons" or k == "fwd")]


def _mesh(gen, layout, axis_type):
    shape, names, _ = LAYOUTS[layout]
    devices = np.array(tpu.topology(gen).devices[:4]).reshape(shape)
    return jax.sharding.Mesh(devices, names, axis_types=(axis_type,) * len(names))


def _args(mesh, p, layout):
    row = LAYOUTS[layout][2]
    j, v = jax.eval_shape(inputs, p)
    return (jax.ShapeDtypeStruct(j.shape, j.dtype, sharding=NamedSharding(mesh, P(None, *row))),
            jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=NamedSharding(mesh, row)))


@pytest.mark.parametrize("gen,model,what,layout", CASES, ids=lambda x: str(x))
def test_explicit_axes_compile_per_shard_with_no_collectives(gen, model, what, layout):
    p = models()[model]
    fn, _ = programs(p, "pallas")[what]
    mesh = _mesh(gen, layout, AxisType.Explicit)
    with jax.set_mesh(mesh):
        compiled = jax.jit(fn).trace(*_args(mesh, p, layout)).lower().compile()
    hlo = compiled.as_text()
    assert 'custom_call_target="tpu_custom_call"' in hlo, "no Mosaic kernel in the compiled program"
    assert not COLLECTIVES.findall(hlo), sorted(set(COLLECTIVES.findall(hlo)))


@pytest.mark.parametrize("gen", ["v5e", "v6e"])
@pytest.mark.parametrize("what", ["fwd", "grad", "step"])
def test_automatic_axes_get_the_explicit_axes_advice(gen, what):
    p = models()["sj"]
    fn, _ = programs(p, "pallas")[what]
    mesh = _mesh(gen, "batch+neurons", AxisType.Auto)
    with pytest.raises(NotImplementedError) as info:
        jax.jit(fn).trace(*_args(mesh, p, "batch+neurons")).lower()
    text = str(info.value)
    assert "4 TPU chips with automatic mesh axes" in text and "AxisType.Explicit" in text
    assert "jax.set_mesh(mesh)" in text and text.startswith(partitioning.AUTO_AXES_ERROR.split("{n}")[0])
