"""A CPU-only user sees clean output: importing the library, asking JAX for its devices and running
a kernel print nothing to stderr, though the CUDA plugin and libtpu (the aot extra) are installed."""
import os
import subprocess
import sys

SCRIPT = """
import numpy as np
import surrogate_pallas as sp
import jax
print(jax.devices()[0].platform)
p = sp.presets.spikingjelly()
print(float(sp.lif_sequence(np.ones((3, 4)) * 1.5, p.init_state((4,)), p, backend="interpret")[1].s.sum()))
"""


def test_no_start_up_chatter_on_a_cpu_host():
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_PLATFORMS", "TF_CPP_MIN_LOG_LEVEL")}
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["cpu", "4.0"]
    assert r.stderr == "", r.stderr


def test_only_the_cuda_stub_lines_are_dropped():
    from surrogate_pallas._quiet import without_noise
    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1796185233.660628    2262 cudart_stub.cc:31] Could not find cuda drivers on your "
            "machine, GPU will not be used.\n"
            "UserWarning: something the user must see\n"
            "E0000 xla error\n")
    assert without_noise(text) == "UserWarning: something the user must see\nE0000 xla error\n"
