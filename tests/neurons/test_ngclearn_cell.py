"""lif_step against the real ngclearn 3.2.1 LIFCell (in the test extra), step by step.

ngclearn's cell is compiled by ngcsimlib and driven by ``advance.run(t=..., dt=...)``; its
compartments are read after every step and compared with ``lif_step``'s state and outputs.
"""
import jax
import numpy as np
import pytest
from ngclearn import Context, MethodProcess
from ngclearn.components import LIFCell

import surrogate_pallas as sp
from helpers.kernel_backend import KERNEL

CASES = {
    "midpoint, refractory, adaptive, v_min": dict(tau_m=12.0, resist_m=1.5, thr=-52.0, v_rest=-65.0, v_reset=-60.0,
                                                  conduct_leak=1.0, tau_theta=200.0, theta_plus=0.4,
                                                  refract_time=2.0, v_min=-64.0, integration_type="midpoint"),
    "euler, ngclearn defaults": dict(tau_m=10.0, integration_type="euler"),
}


@pytest.mark.parametrize("backend", ["xla", KERNEL])
@pytest.mark.parametrize("case", list(CASES))
def test_bit_identical_to_ngclearn_lifcell(case, backend):
    kw, n, T, dt = CASES[case], 257, 300, 0.5
    with Context(f"ctx_{abs(hash((case, backend)))}"):
        cell = LIFCell("z", n_units=n, **kw)
        advance = MethodProcess(name="advance") >> cell.advance_state
        reset = MethodProcess(name="reset") >> cell.reset
    reset.run()
    params = sp.presets.ngclearn(**kw, dt=dt)
    state = params.init_state((1, n))
    step = jax.jit(lambda st, j, t: sp.lif_step(st, j, params, t=t, backend=backend))
    key = jax.random.PRNGKey(0)
    drive = 10.0 + 20.0 * jax.random.uniform(key, (1, n))
    spikes = 0
    for k in range(T):
        j = drive * jax.random.uniform(jax.random.fold_in(key, k), (1, n))
        cell.j.set(j)
        advance.run(t=k * dt, dt=dt)
        state, out = step(state, j, k * dt)
        for ours, theirs in [(out.s, cell.s), (state.v, cell.v), (state.rfr, cell.rfr), (state.tols, cell.tols),
                             (state.thr_theta, cell.thr_theta), (out.surrogate, cell.surrogate)]:
            np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs.get()), err_msg=f"step {k}")
        spikes += int(np.asarray(out.s).sum())
    assert spikes > 300  # refractory periods and threshold adaptation are exercised
