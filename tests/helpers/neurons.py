"""A user-defined neuron the tests share: the adaptive-threshold neuron (ALIF) of the docs' example,
written as a user writes it."""
import surrogate_pallas as sp

SUR = sp.get_surrogate("fast_sigmoid", slope=25.0)


def charge(p, s, j):
    return {"v": p.alpha * s.v + (1.0 - p.alpha) * j, "a": s.a}


def threshold(p, h):
    return p.b0 + p.beta * h.a


def reset(p, h, spike, thr):
    return {"v": h.v - spike * thr, "a": p.rho * h.a + (1.0 - p.rho) * spike}


ALIF = sp.Neuron("alif", state=("v", "a"), params=("alpha", "b0", "beta", "rho"), charge=charge,
                 threshold=threshold, reset=reset, surrogate=SUR)
