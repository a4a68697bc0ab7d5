"""Connectivity formats and builders: edges in, padded rows out, rules without an N x N
intermediate, and clear errors for bad input."""
import numpy as np
import pytest

from surrogate_pallas import networks as nw


def test_from_edges_keeps_every_synapse_with_its_weight_and_delay():
    pre, post = np.array([2, 0, 2, 1, 2]), np.array([1, 3, 1, 0, 4])
    c = nw.from_edges(pre, post, weight=np.array([1.0, 2.0, 3.0, 4.0, 5.0]), delay=np.array([0, 1, 2, 3, 4]),
                      n_pre=3, n_post=5)
    assert c.n_synapses == 5 and c.fan_out == 3 and c.targets.shape == (4, 3) and c.max_delay == 4
    p, q, w, d = c.edges()
    got = sorted(zip(p.tolist(), q.tolist(), w.tolist(), d.tolist()))
    assert got == sorted(zip(pre.tolist(), post.tolist(), [1.0, 2.0, 3.0, 4.0, 5.0], [0, 1, 2, 3, 4]))
    assert np.all(c.targets[3] == 5)  # the padding row for fixed-size spike lists
    W = c.dense()
    assert W[2, 1] == 4.0 and W[0, 3] == 2.0 and W.sum() == 15.0  # the duplicate pair adds up


def test_fixed_probability_is_bernoulli_per_pair_and_scales():
    n = 50_000
    c = nw.fixed_probability(n, n, 80.0 / n, seed=1)  # 4M synapses of 2.5G pairs, no N x N matrix
    assert abs(c.n_synapses - 80 * n) < 6 * np.sqrt(80 * n)
    pre, post, _, _ = c.edges()
    assert len(np.unique(pre.astype(np.int64) * n + post)) == len(pre)  # each pair at most once
    small = nw.fixed_probability(50, 40, 0.3, seed=2).dense()
    assert abs(small.mean() - 0.3) < 0.05 and set(np.unique(small)) <= {0.0, 1.0}
    assert np.array_equal(nw.fixed_probability(50, 40, 0.3, seed=2).dense(), small)  # the seed decides
    assert not np.array_equal(nw.fixed_probability(50, 40, 0.3, seed=3).dense(), small)
    assert np.all(np.diag(nw.fixed_probability(60, 60, 0.5, seed=4, allow_self=False).dense()) == 0)


def test_fixed_degrees_one_to_one_and_all_to_all():
    W = nw.fixed_in_degree(100, 30, 7, seed=0).dense()
    assert np.all((W > 0).sum(0) == 7) and W.max() == 1.0
    W = nw.fixed_out_degree(30, 100, 9, seed=0).dense()
    assert np.all((W > 0).sum(1) == 9) and W.max() == 1.0
    assert np.array_equal(nw.one_to_one(5, weight=2.0).dense(), 2.0 * np.eye(5, dtype=np.float32))
    assert nw.all_to_all(4, 6).n_synapses == 24 and nw.all_to_all(4, 4, allow_self=False).n_synapses == 12
    W = np.array([[0.0, 1.5], [2.0, 0.0]], np.float32)
    assert np.array_equal(nw.dense(W).dense(), W)


@pytest.mark.parametrize("call,message", [
    (lambda: nw.from_edges([0, 5], [1, 1], n_pre=3, n_post=3), "pre: index 5 is out of range for the presynaptic"),
    (lambda: nw.from_edges([0, 1], [1, -1], n_pre=3, n_post=3), "post: index -1 is out of range"),
    (lambda: nw.from_edges([0, 1], [1], n_pre=3, n_post=3), "pre and post: expected the same length"),
    (lambda: nw.from_edges([0, 1], [1, 2], delay=[1, -2], n_pre=3, n_post=3), "delay: delays must be >= 0"),
    (lambda: nw.from_edges([0, 1], [1, 2], delay=-1, n_pre=3, n_post=3), "delay: delays must be >= 0"),
    (lambda: nw.from_edges([0, 1], [1, 2], delay=[0.5, 1], n_pre=3, n_post=3), "delay: expected whole steps"),
    (lambda: nw.from_edges([0, 1], [1, 2], weight=[1.0, 2.0, 3.0], n_pre=3, n_post=3),
     r"weight: expected one value per synapse \(2\)"),
    (lambda: nw.from_edges([0, 1], [1, 2], weight=[1.0, np.nan], n_pre=3, n_post=3), "weight: must be finite"),
    (lambda: nw.from_edges([0.5], [1], n_pre=3, n_post=3), "pre: expected integer neuron indices"),
    (lambda: nw.fixed_probability(10, 10, 1.5, seed=0), r"p: expected a probability in \[0, 1\]"),
    (lambda: nw.fixed_in_degree(5, 5, 6, seed=0), "expected a degree <= 5"),
    (lambda: nw.fixed_out_degree(5, -1, 2, seed=0), "n_post: expected a non-negative whole number"),
])
def test_bad_connectivity_names_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()
