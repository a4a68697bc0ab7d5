"""Independent float64 scalar transcriptions of the surrogate formulas in docs/numerics.md (not the library's code)."""
import math

PI = math.pi


def _sig(z):
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


def sg(name, x, p):
    a = p.get("alpha")
    if name == "straight_through":
        return 1.0
    if name == "triangular":
        return max(0.0, 1 - a * abs(x))
    if name == "explicit_triangular":
        return max(0.0, 1 - abs(x) / p["window"])
    if name == "arctan":
        return (1 / PI) / (1 + (PI * a / 2 * x) ** 2) if abs(x) < 1e150 else 0.0
    if name == "boxcar":
        return 1.0 if abs(x) <= p["window"] else 0.0
    if name == "secant_lif":
        if x <= 0:
            return 0.0
        u = p["c2"] * x
        val = 1 / math.cosh(u) if u < 700 else 0.0
        return val if p["omit_scale"] else val * p["c1"] * p["c2"]
    if name == "atan":
        return (a / 2) / (1 + (PI * a / 2 * x) ** 2) if abs(x) < 1e150 else 0.0
    if name == "sigmoid":
        s = _sig(a * x)
        return a * s * (1 - s) if abs(a * x) < 30 else a * math.exp(-abs(a * x))
    if name in ("fast_sigmoid", "superspike"):
        return 1 / (1 + p["slope"] * abs(x)) ** 2
    if name == "erf":
        return a / math.sqrt(PI) * math.exp(-((a * x) ** 2)) if abs(a * x) < 1e150 else 0.0
    if name == "piecewise_quadratic":
        return a - a * a * abs(x) if abs(x) <= 1 / a else 0.0
    if name == "piecewise_exp":
        return a / 2 * math.exp(-a * abs(x))
    if name == "soft_sign":
        return a / (2 * (1 + a * abs(x)) ** 2)
    if name == "rect":
        return a if abs(x) < 1 / (2 * a) else 0.0
    if name == "piecewise_leaky_relu":
        return 1 / (2 * p["w"]) if abs(x) < p["w"] else p["c"]
    if name == "s2nn":
        if x < 0:
            s = _sig(a * x)
            return a * s * (1 - s) if abs(a * x) < 30 else a * math.exp(-abs(a * x))
        return p["beta"] / (x + 1)
    if name == "q_pseudo_spike":
        return (1 + 2 * abs(x) / (a - 1)) ** (-a)
    if name == "log_tailed_relu":
        return a if x <= 0 else (1.0 if x <= 1 else 1 / x)
    if name == "slayer":
        return math.exp(-a * abs(x))
    if name == "gaussian":
        s = p["sigma"]
        return math.exp(-((x / s) ** 2) / 2) / (math.sqrt(2 * PI) * s) if abs(x / s) < 1e150 else 0.0
    if name == "nonzero_sign_log":
        return 1 / (1 / a + abs(x))
    if name == "inverse_square_root":
        return (1 + a * x * x) ** -1.5 if abs(x) < 1e150 else 0.0
    raise KeyError(name)
