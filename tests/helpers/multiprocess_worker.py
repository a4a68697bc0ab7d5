"""One of two processes on localhost sharing a global 8-device CPU mesh (4 devices each), through
JAX's own distributed runtime; run by ``sharding/test_multiprocess.py``.

Usage: python multiprocess_worker.py PORT PROCESS_ID BACKEND.  Prints ``PASS <name>`` or
``FAIL <name>: <detail>`` for each name of ``multiprocess_cases.CASES``, then ``ALL DONE``.
"""
import os
import sys

os.environ["JAX_PLATFORMS"] = "cpu"
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"

import surrogate_pallas as sp  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

from helpers.multiprocess_cases import CASES  # noqa: E402

T, B, D, N = 8, 4, 16, 256



def check(name, cond, detail=""):
    assert name in CASES, name
    print(f"PASS {name}" if cond else f"FAIL {name}: {detail}", flush=True)


def data():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, (T, B, D)).astype(np.float32)
    w = (rng.normal(0.0, 1.0, (D, N)) / np.sqrt(D) + 0.3).astype(np.float32)
    target = rng.uniform(0.0, 0.5, (B, N)).astype(np.float32)
    j = (0.6 + rng.normal(0.0, 1.0, (T, B, N))).astype(np.float32)
    return x, w, target, j


def main():
    port, pid, backend = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=2, process_id=pid)
    check("8 global devices, 4 local", jax.device_count() == 8 and jax.local_device_count() == 4)
    p = sp.presets.spikingjelly(tau=4.0)
    x, w, target, j = data()
    mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ("b", "n"))

    def put(a, spec):
        sh = NamedSharding(mesh, spec)
        return jax.make_array_from_callback(a.shape, sh, lambda idx: a[idx])

    def local_equal(out, ref, exact):
        for shard in out.addressable_shards:
            got, want = np.asarray(shard.data), np.asarray(ref)[shard.index]
            if not (np.array_equal(got, want) if exact else np.allclose(got, want, rtol=1e-5, atol=1e-6)):
                return False
        return True

    # one process alone, on one of its own devices: the reference
    one = jax.local_devices()[0]
    on_one = lambda a: jax.device_put(a, one)

    def fwd(j):
        st, out = sp.lif_sequence(j, p.init_state(j.shape[1:]), p, backend=backend)
        return out.s, st.v

    ref_s, ref_v = jax.jit(fwd)(on_one(j))
    s, v = jax.jit(fwd)(put(j, P(None, "b", "n")))
    check("sharded forward spikes equal one process", local_equal(s, ref_s, exact=True))
    check("sharded forward state equals one process", local_equal(v, ref_v, exact=True))
    check("forward output keeps the population sharding", tuple(s.sharding.spec) == (None, "b", "n"))

    opt = optax.sgd(0.5)

    def loss(w, x, target):
        cur = jnp.einsum("tbd,dn->tbn", x, w)
        _, out = sp.lif_sequence(cur, p.init_state(cur.shape[1:]), p, backend=backend)
        return jnp.mean((out.s.mean(0) - target) ** 2)

    @jax.jit
    def train_step(w, opt_state, x, target):
        value, g = jax.value_and_grad(loss)(w, x, target)
        updates, opt_state = opt.update(g, opt_state, w)
        return optax.apply_updates(w, updates), opt_state, value

    w_ref, _, l_ref = train_step(on_one(w), opt.init(on_one(w)), on_one(x), on_one(target))
    wS = put(w, P(None, "n"))
    w_new, _, l_new = train_step(wS, opt.init(wS), put(x, P()), put(target, P("b", "n")))
    check("training step: the loss equals one process", np.allclose(float(l_new), float(l_ref), rtol=1e-5),
          (float(l_new), float(l_ref)))
    check("training step: the updated weights equal one process", local_equal(w_new, w_ref, exact=False))
    check("training step: the weights stay sharded", tuple(w_new.sharding.spec) == (None, "n"))
    check("training step: the weights changed", not np.allclose(np.asarray(w_ref), w))
    jax.distributed.shutdown()
    print("ALL DONE", flush=True)


if __name__ == "__main__":
    main()
