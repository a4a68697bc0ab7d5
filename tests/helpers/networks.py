"""Networks the network tests and the network compile tests share."""
import numpy as np

import surrogate_pallas as sp
from surrogate_pallas import networks as nw


def rich(n_a=150, n_b=70, n_c=40, seed=3):
    """Three populations (CUBA, COBA, a snnTorch preset), per-synapse weights, delays into a state
    variable and into the input current, Poisson input into both, a current, and traces."""
    rng = np.random.default_rng(seed)
    net = nw.Network(dt=0.1)
    net.add_population("A", nw.cuba(), n_a, u=nw.models.cuba_u(rng.uniform(-60, -49.5, n_a)))
    net.add_population("B", nw.coba(), n_b, v=rng.uniform(-60, -50.5, n_b))
    net.add_population("C", sp.presets.snntorch_leaky(beta=0.9), n_c)
    net.connect("A", "A", nw.fixed_probability(n_a, n_a, 0.08, seed=1, weight=0.7), "ge")
    net.connect("A", "B", nw.fixed_probability(n_a, n_b, 0.1, seed=2, weight=lambda r, m: r.uniform(0.05, 0.3, m),
                                               delay=lambda r, m: r.integers(0, 4, m)), "ge")
    net.connect("B", "A", nw.fixed_probability(n_b, n_a, 0.1, seed=3, weight=-2.5, delay=2), "gi")
    net.connect("B", "C", nw.fixed_out_degree(n_b, n_c, 3, seed=4, weight=0.2, delay=1), "input")
    net.connect("C", "B", nw.fixed_in_degree(n_c, n_b, 2, seed=5, weight=0.05), "gi")
    net.add_poisson("B", rate_hz=100.0, weight=0.3, target="ge", n_sources=10)
    net.add_poisson("C", rate_hz=1000.0, weight=0.5, target="input", n_sources=3)
    net.add_current("A", rng.uniform(8.0, 13.0, n_a))
    net.record_state("A", "u", [0, 9, n_a - 1])
    net.record_state("B", "v", [3, 4])
    return net
