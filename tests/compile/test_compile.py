"""The real compilers, ahead of time, on this CPU-only machine.

Every public program compiles with libtpu for TPU v4, v5e, v5p and v6e, and its
Triton kernels compile with the ``triton`` package for sm_80, sm_90 and sm_100
with no register spills.  CI runs a representative matrix (every model x every
program, then every dtype and spike dtype over 1-3-dim aligned and ragged
populations), each program on two of the four TPU generations in rotation (so every
generation compiles every model and program kind; ``inspect``'s gate compiles its own programs
on all four); ``SP_AOT_MATRIX=full`` runs the full cross product on every generation, and
``SP_AOT_MATRIX=core`` only every model x program kind in float32.
"""
import os

import pytest

from surrogate_pallas.tooling.aot import nvidia, programs, tpu

FULL = os.environ.get("SP_AOT_MATRIX") == "full"
CORE = os.environ.get("SP_AOT_MATRIX") == "core"  # the newest-JAX CI leg: every model x program kind
MATRIX = programs.full_matrix() if FULL else programs.core_matrix() if CORE else programs.ci_matrix()
GENS = tuple(tpu.GENERATIONS)
TPU_CASES = [(p, GENS if FULL else (GENS[i % len(GENS)], GENS[(i + 1) % len(GENS)])) for i, p in enumerate(MATRIX)]


def test_the_matrix_covers_every_model_program_dtype_and_shape():
    seen = lambda f: {f(p) for p in MATRIX}
    assert seen(lambda p: p.model) == set(programs.MODELS)
    assert seen(lambda p: p.what) == set(programs.WHATS)
    if CORE:
        return
    assert seen(lambda p: p.dtype) == set(programs.DTYPES)
    assert seen(lambda p: p.spike_dtype) == {None, "int8"}
    assert seen(lambda p: p.pop) >= set(programs.POPS) and {1, 2, 3} <= seen(lambda p: len(p.pop))
    for m in programs.MODELS:  # every dtype of every model, forward and backward
        assert {p.dtype for p in MATRIX if p.model == m and p.what == "fwd"} == set(programs.DTYPES)


def test_every_tpu_generation_compiles_every_model_and_program_kind():
    for gen in GENS:
        cases = [p for p, gens in TPU_CASES if gen in gens]
        assert {p.model for p in cases} == set(programs.MODELS) and {p.what for p in cases} == set(programs.WHATS)


@pytest.mark.parametrize("program,gens", TPU_CASES, ids=lambda c: getattr(c, "id", None) or "+".join(c))
def test_compiles_for_tpu_generations(program, gens):
    fn, args = program.build()
    failures = []
    for gen in gens:
        r = tpu.compile_program(fn, args, gen)
        if not r.ok:
            failures.append(f"{program.id} on TPU {gen}: {r.error}")
        elif r.kernels < 1:  # a program that compiled no kernel has checked nothing
            failures.append(f"{program.id} on TPU {gen}: no Mosaic kernel in the compiled program")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("program", MATRIX, ids=lambda p: p.id)
def test_triton_kernels_compile_without_spills(program):
    fn, args = program.build()
    kernels = nvidia.compile_program(fn, args)
    problems = [f"{program.id} {k.name} on {k.arch}: {k.error}" for k in kernels if not k.ok]
    problems += [f"{program.id} {k.name} on {k.arch}: spills {k.spill_bytes} B of local memory"
                 for k in kernels if k.ok and (k.spill_bytes or k.stack_bytes)]
    assert kernels, f"{program.id}: no Triton kernel was lowered, so nothing was compiled"
    assert not problems, "\n".join(problems)


def test_a_compile_failure_is_reported_by_name():
    def broken(x):
        from jax.experimental import pallas as pl
        import jax

        def k(x_ref, o_ref):  # f16 vector loads: Mosaic TPU has none
            o_ref[...] = x_ref[...] * 2
        return pl.pallas_call(k, out_shape=jax.ShapeDtypeStruct(x.shape, x.dtype))(x)

    import jax
    import jax.numpy as jnp
    r = tpu.compile_program(broken, (jax.ShapeDtypeStruct((32, 128), jnp.float16),), "v5e")
    assert not r.ok and "Mosaic" in r.error


def test_capturing_triton_modules_names_what_moved(monkeypatch):
    from jax._src.pallas.triton import pallas_call_registration as reg
    monkeypatch.delattr(reg.lowering, "lower_jaxpr_to_triton_module")
    with pytest.raises(RuntimeError, match="lower_jaxpr_to_triton_module"):
        nvidia.lower(*programs.Program("spikingjelly_hard", "fwd", (1000,)).build())
