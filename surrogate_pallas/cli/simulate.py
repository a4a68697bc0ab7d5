"""``surrogate-pallas simulate``: a large ngclearn-style LIF population driven by Poisson input."""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from .. import backends, presets
from ..api import lif_sequence, lif_step
from ..tooling.baselines import ngclearn_scan

RASTER_NEURONS = 100


def population():
    return presets.ngclearn(tau_m=10.0, thr=-52.0, v_rest=-65.0, v_reset=-60.0, tau_theta=1e7,
                              theta_plus=0.05, refract_time=5.0, dt=1.0)


def poisson_drive(key, steps, n, weight, rate_hz=400.0, dt_ms=1.0):
    """Input current ``weight * x_t``: x_t is a Poisson spike train at ``rate_hz`` (at most one
    input spike per 1 ms step, i.e. Bernoulli(rate * dt)), with a per-neuron synaptic weight.

    Random numbers dominate a CPU simulation, so each 32-bit random word gives four draws
    (p quantised to 1/256)."""
    words = -(-n // 4)
    bits = jax.random.bits(key, (steps, words), jnp.uint32)
    draws = jnp.stack([(bits >> (8 * i)) & 0xFF for i in range(4)], axis=-1).reshape(steps, 4 * words)[:, :n]
    threshold = round(rate_hz * dt_ms / 1000.0 * 256)
    return (draws < threshold).astype(jnp.float32) * weight


def simulate(n: int, steps: int, chunk: int, backend: str, seed: int, compare_steps: int, progress=None):
    """Returns a dict of results (rates, speeds) and a raster sample [T_sample, 100].

    The library path is the fastest way to run the library on this platform: a time-fused
    ``lif_sequence`` per chunk where a kernel runs (GPU, TPU, ``backend="pallas"``), and a
    ``lax.scan`` of ``lif_step`` with the input drawn inside each step where the jnp reference
    runs (CPU), where materialising the chunk's currents would cost more than the fusion saves."""
    params = population()
    key = jax.random.PRNGKey(seed)
    weight = 20.0 + 40.0 * jax.random.uniform(jax.random.fold_in(key, 1), (n,))

    fused_sequence = backends.runs_kernel(backend)

    @jax.jit
    def run_chunk(state, key, t0):
        if fused_sequence:  # a kernel runs: one time-fused launch per chunk, the state stays on chip
            j = poisson_drive(key, chunk, n, weight)
            state, out = lif_sequence(j, state, params, t0=t0, backend=backend, with_surrogate=True,
                                      spike_dtype=jnp.int8)
            return state, out.s[:, :RASTER_NEURONS], jnp.sum(out.s, dtype=jnp.int32), out.surrogate.max()

        # the jnp reference runs (CPU): one scan of fused steps, each drawing its own input, so no
        # [T, N] current is ever written to memory
        def body(carry, k):
            st, count, top = carry
            j = poisson_drive(jax.random.fold_in(key, k), 1, n, weight)[0]
            st, out = lif_step(st, j, params, t=t0 + k.astype(jnp.float32), backend=backend, spike_dtype=jnp.int8)
            return (st, count + jnp.sum(out.s, dtype=jnp.int32), jnp.maximum(top, out.surrogate.max())), \
                out.s[:RASTER_NEURONS]

        (state, count, top), s = jax.lax.scan(body, (state, jnp.int32(0), jnp.float32(0.0)), jnp.arange(chunk))
        return state, s, count, top

    state = params.init_state((n,))
    state, s, _, _ = run_chunk(state, key, 0.0)  # compile and warm up
    jax.block_until_ready(s)
    state = params.init_state((n,))
    total, sample = 0, []
    n_chunks = -(-steps // chunk)
    t = time.perf_counter()
    for c in range(n_chunks):
        state, s, count, _ = run_chunk(state, jax.random.fold_in(key, c + 2), float(c * chunk))
        total += int(count)
        if len(sample) * chunk < 300:
            sample.append(np.asarray(s))
        if progress:
            progress(c + 1, n_chunks)
    lib_time = time.perf_counter() - t
    done = n_chunks * chunk

    # the plain per-step JAX loop, as an ngclearn user steps a cell: one jitted call per step,
    # generating its input the same way (both timings include the Poisson sampling)
    @jax.jit
    def step(st, key, t):
        st, (s, surr) = ngclearn_scan(poisson_drive(key, 1, n, weight), st, t0=t)
        return st, s.astype(jnp.int8), surr  # what an ngclearn user gets back each step

    st = tuple(params.init_state((n,)))
    jax.block_until_ready(step(st, key, 0.0))
    t = time.perf_counter()
    for k in range(compare_steps):
        st, s_k, surr_k = step(st, jax.random.fold_in(key, k), float(k))
    jax.block_until_ready((st, s_k, surr_k))
    base_time = time.perf_counter() - t
    lib_rate = n * done / lib_time
    base_rate = n * compare_steps / base_time
    return dict(neurons=n, steps=done, spikes=total, rate_per_step=total / (n * done),
                rate_hz=total / (n * done) * 1000.0, library_neuron_steps_per_s=lib_rate,
                per_step_loop_neuron_steps_per_s=base_rate, speedup=lib_rate / base_rate,
                backend=backend, platform=jax.default_backend(),
                library_path="lif_sequence per chunk" if fused_sequence else "lax.scan of lif_step"), \
        np.concatenate(sample)[:300]
