"""The reference values of the homework's tests, computed exactly: at build time for the public cases
(the master's last cell), and at grading time, from values drawn then, for the hidden ones.

This module ships only in the autograder zip (the master's `autograder_files`): students never get
it, and the grader never imports it where the student's code runs. So no hidden value is written in
any file, the test files and the zip included, and none is the same twice: each question's hidden
cases draw their own inputs, once per grading, from the operating system's randomness. A value the
grader sends a notebook in one check, or in one grading, answers nothing in another (see
docs/checks.md).

Every value is the same bits on every machine: Part 2 is computed with Python floats in loops of a
fixed order (math.fsum for the sums), never with numpy's matrix products, whose BLAS kernels differ
between CPUs; Part 1's sin, cos and exp are evaluated with 80 decimal digits and rounded once, so no
maths library's last bit can show.
"""

import decimal
import math
import secrets
from typing import Any, Sequence

import numpy as np

# ---------------------------------------------------------------------------------------------
# Part 1: the toy model


def exactly(function: str, value: float) -> float:
    """sin, cos or exp of a float, computed with 80 digits and rounded once to a float."""
    with decimal.localcontext() as context:
        context.prec = 80
        x = decimal.Decimal(value)  # the float's exact value
        if function == "exp":
            return float(x.exp())
        assert abs(x) < 100, "the series below needs a moderate argument"
        term = x if function == "sin" else decimal.Decimal(1)
        total, n = term, 1 if function == "sin" else 0
        while abs(term) > decimal.Decimal(10) ** -60:
            term = -term * x * x / ((n + 1) * (n + 2))
            total, n = total + term, n + 2
        return float(total)


def toy_point(beta0: float, beta1: float, beta2: float, beta3: float, omega0: float, omega1: float, omega2: float,
              omega3: float, x: float, y: float) -> dict[str, float]:
    """Part 1 at one set of parameters: every value of the forward pass, the backward pass and the
    parameter derivatives."""
    p = dict(beta0=beta0, beta1=beta1, beta2=beta2, beta3=beta3, omega0=omega0, omega1=omega1, omega2=omega2,
             omega3=omega3, x=x, y=y)
    p["f0"] = beta0 + omega0 * x
    p["h1"] = exactly("sin", p["f0"])
    p["f1"] = beta1 + omega1 * p["h1"]
    p["h2"] = exactly("exp", p["f1"])
    p["f2"] = beta2 + omega2 * p["h2"]
    p["h3"] = exactly("cos", p["f2"])
    p["f3"] = beta3 + omega3 * p["h3"]
    p["l_i"] = (p["f3"] - y) ** 2
    p["dldf3"] = 2 * (p["f3"] - y)
    p["dldh3"] = omega3 * p["dldf3"]
    p["dldf2"] = -exactly("sin", p["f2"]) * p["dldh3"]
    p["dldh2"] = omega2 * p["dldf2"]
    p["dldf1"] = p["h2"] * p["dldh2"]
    p["dldh1"] = omega1 * p["dldf1"]
    p["dldf0"] = exactly("cos", p["f0"]) * p["dldh1"]
    for k, h in enumerate([x, p["h1"], p["h2"], p["h3"]]):
        p[f"dldbeta{k}"] = p[f"dldf{k}"]
        p[f"dldomega{k}"] = h * p[f"dldf{k}"]
    return p


# Every derivative along the chain is at least this large at a hidden point, so that each matters.
LIVELY = 1e-3


def random_toy_point(rng: np.random.Generator) -> dict[str, float]:
    """Parameters drawn at random (4 places), away from zero, where every derivative matters."""
    while True:
        betas = np.round(rng.uniform(-2, 2, size=4), 4)
        omegas = np.round(rng.choice([-1, 1], size=4) * rng.uniform(0.3, 1.5, size=4), 4)
        x, y = np.round(rng.uniform(-3, 3), 4), np.round(rng.uniform(-2, 2), 4)
        point = toy_point(*map(float, [*betas, *omegas, x, y]))
        if min(abs(point[name]) for name in ("dldf3", "dldf2", "dldf1", "dldf0")) > LIVELY:
            return point


def varied_toy_points(count: int, rng: np.random.Generator) -> list[dict[str, float]]:
    """`count` random points that between them give sin and cos of f0 and f2, and f3 - y, both
    signs: an answer right on one side only (cos f0 written as sqrt(1 - h1**2), or dl/df3 as
    2 sqrt(l_i)) fails a hidden case."""
    while True:
        points = [random_toy_point(rng) for _ in range(count)]
        signs = [[math.sin(p["f0"]), math.cos(p["f0"]), math.sin(p["f2"]), math.cos(p["f2"]), p["f3"] - p["y"]]
                 for p in points]
        if all(min(column) < 0 < max(column) for column in zip(*signs)):
            return points


# The hidden points of a question are drawn once per check (the cases of a question share them, and
# so the reruns of the student's cells), kept on the grader's view of the student (`env.drawn`); in a
# notebook's own kernel (stock otter's grading), by the namespace the cases read.
HIDDEN_POINTS = 3
_DRAWN_IN_A_KERNEL: dict[int, dict] = {}


def hidden_toy_points(env: Any, question: str) -> list[dict[str, float]]:
    """The hidden points of `question` for this grading: drawn at the first of its cases from the
    operating system's randomness, the same for its other cases, and unrelated to any other
    question's (whose inputs could otherwise be this one's answers) or any other grading's."""
    drawn = env.drawn if hasattr(env, "drawn") else _DRAWN_IN_A_KERNEL.setdefault(id(env), {})
    if question not in drawn:
        drawn[question] = varied_toy_points(HIDDEN_POINTS, fresh_generator())
    return drawn[question]


def fresh_generator() -> np.random.Generator:
    """A generator seeded with 128 bits of the operating system's randomness."""
    return np.random.default_rng(secrets.randbits(128))


# ---------------------------------------------------------------------------------------------
# Part 2: the deep network


def columns(values: Sequence[float]) -> list[list[float]]:
    """A flat list as a column vector, (n, 1), in plain lists."""
    return [[value] for value in values]


def exact_forward(weights: Sequence[Any], biases: Sequence[Any], net_input: Any) -> tuple[list, list]:
    """The forward pass in Python floats: (all_f, all_h) as flat lists, the same bits everywhere."""
    h = [float(row[0]) for row in net_input]
    all_f, all_h = [], [h]
    for layer, (weight, bias) in enumerate(zip(weights, biases)):
        f = [math.fsum([float(b[0])] + [float(w) * v for w, v in zip(row, h)]) for row, b in zip(weight, bias)]
        all_f.append(f)
        if layer < len(weights) - 1:
            h = [v if v > 0 else 0.0 for v in f]
            all_h.append(h)
    return all_f, all_h


def relu_slope(all_f: list, layer: int, at_kink: float = 0.0) -> list[float]:
    """The ReLU's derivative at the pre-activations below layer `layer`; `at_kink` is its value at
    exactly 0 (the homework's is 0; 1 gives the gradients of `f >= 0`)."""
    return [1.0 if f > 0 else at_kink if f == 0 else 0.0 for f in all_f[layer - 1]]


def slope_of_the_layer_above(all_f: list, layer: int) -> list[float] | None:
    """The indicator of f_k where that of f_(k-1) belongs, spread as numpy would (None: it cannot be)."""
    above = [1.0 if f > 0 else 0.0 for f in all_f[layer]]
    return above * len(all_f[layer - 1]) if len(above) == 1 else above if len(above) == len(all_f[layer - 1]) else None


# The slopes a backward pass takes with each common mistake of the ReLU indicator, by the names
# backprop_checks.INDICATOR_MISTAKES gives their words.
INDICATOR_MISTAKES = {
    "no indicator": lambda all_f, layer: [1.0] * len(all_f[layer - 1]),
    "indicator of the wrong layer": slope_of_the_layer_above,
    "indicator at the kink": lambda all_f, layer: relu_slope(all_f, layer, at_kink=1.0),
}


def exact_backward(weights: Sequence[Any], all_f: list, all_h: list, target: Any, slope: Any = relu_slope) -> Any:
    """The backward pass in Python floats: (dl/dOmega_k, dl/dbeta_k) as nested lists, with
    `slope(all_f, k)` for the ReLU's derivative below layer k (None if it has none)."""
    K = len(weights) - 1
    dl_df = [2 * (f - float(t[0])) for f, t in zip(all_f[K], target)]
    dweights, dbiases = [None] * (K + 1), [None] * (K + 1)
    for layer in range(K, -1, -1):
        dbiases[layer] = columns(dl_df)
        dweights[layer] = [[d * h for h in all_h[layer]] for d in dl_df]
        if layer > 0:
            dl_dh = [math.fsum(float(weights[layer][i][j]) * dl_df[i] for i in range(len(dl_df)))
                     for j in range(len(all_h[layer]))]
            slopes = slope(all_f, layer)
            if slopes is None:
                return None
            dl_df = [g * s for g, s in zip(dl_dh, slopes)]
    return dweights, dbiases


def significant(arrays: Sequence[Any], digits: int = 6) -> list:
    """Round every value to `digits` significant digits: the precision the public checks use."""
    return [np.array([float(f"{v:.{digits}g}") for v in np.ravel(a)]).reshape(np.shape(a)).tolist() for a in arrays]


def as_lists(arrays: Sequence[Any]) -> list:
    return [np.asarray(a, dtype=float).tolist() for a in arrays]


def reference_case(network: dict, backward: bool = True) -> dict:
    """Inputs plus the exact results for one network, as plain lists; a backward case also carries
    the gradients of each common mistake with the ReLU indicator that gives other ones, so that a
    check can name it."""
    all_f, all_h = exact_forward(network["weights"], network["biases"], network["net_input"])
    case = dict(name=network["name"], weights=as_lists(network["weights"]), biases=as_lists(network["biases"]),
                net_input=np.asarray(network["net_input"], dtype=float).tolist(),
                all_f=[columns(f) for f in all_f], all_h=[columns(h) for h in all_h])
    if backward:
        dweights, dbiases = exact_backward(network["weights"], all_f, all_h, network["y"])
        mistaken = {mistake: exact_backward(network["weights"], all_f, all_h, network["y"], slope)
                    for mistake, slope in INDICATOR_MISTAKES.items()}
        case.update(y=np.asarray(network["y"], dtype=float).tolist(), dl_dweights=dweights, dl_dbiases=dbiases,
                     mistakes={mistake: list(gradients) for mistake, gradients in mistaken.items()
                               if gradients is not None and distinct(gradients, (dweights, dbiases))})
    return case


def sizes(case: dict) -> tuple[int, int, int, int]:
    """(K, D, D_i, D_o) of a network shaped like `case`'s."""
    return (len(case["weights"]) - 1, np.shape(case["weights"][0])[0], np.shape(case["net_input"])[0],
            np.shape(case["weights"][-1])[0])


# A hidden network's hidden units stay this far from the ReLU's kink (so that no round-off can put a
# unit on the other side), every layer has values on both sides of it (so that a missing ReLU or ReLU
# derivative shows, and a ReLU on the output shows as one rather than as zeros; an output of one
# value is below zero), and every layer's gradients are at least ALIVE of the largest (so that each
# layer counts). A common mistake is named only where its gradients are `distinct` from the right ones.
KINK_MARGIN = 0.05
ALIVE = 1e-3


def distinct(mistaken: Sequence[list], right: Sequence[list]) -> bool:
    """Whether a mistake's gradients differ from the right ones, in some layer, by more than ALIVE of
    that layer's largest: by far more than round-off, so that a right answer never looks like it."""
    return any(np.max(np.abs(np.subtract(m, r))) > ALIVE * np.max(np.abs(r))
               for mistaken_layers, right_layers in zip(mistaken, right) for m, r in zip(mistaken_layers, right_layers))


def alive(gradients: list) -> bool:
    """Whether every layer's largest gradient is at least ALIVE of the largest of all: round-off,
    which the checks allow relative to a layer's largest, then stays far below what they tell apart."""
    largest = [max(abs(g) for row in layer for g in row) for layer in gradients]
    return min(largest) > ALIVE * max(largest)


def random_network(K: int, D: int, D_i: int, D_o: int, rng: np.random.Generator, backward: bool) -> dict:
    """A network of these sizes, drawn from `rng` until it has the properties above; with `backward`,
    a target and the exact gradients come with it."""
    layer_sizes = [D_i] + [D] * K + [D_o]
    name = f"a network with K={K}, D={D}, D_i={D_i}, D_o={D_o}" if K else \
        f"a network with no hidden layer (K=0), D_i={D_i}, D_o={D_o}"
    for _ in range(10_000):  # a few dozen suffice for the shapes of the tests
        weights = [rng.normal(size=(layer_sizes[k + 1], layer_sizes[k])) for k in range(K + 1)]
        biases = [rng.normal(size=(layer_sizes[k + 1], 1)) for k in range(K + 1)]
        net_input = rng.normal(size=(D_i, 1))
        all_f, _ = exact_forward(weights, biases, net_input)
        if not all(min(abs(v) for v in f) >= KINK_MARGIN and min(f) < 0 < max(f) for f in all_f[:-1]) \
                or not (min(all_f[-1]) < -KINK_MARGIN and (len(all_f[-1]) == 1 or max(all_f[-1]) > KINK_MARGIN)):
            continue
        network = dict(name=name, weights=weights, biases=biases, net_input=net_input, y=3 * rng.normal(size=(D_o, 1)))
        case = reference_case(network, backward)
        if not backward or (alive(case["dl_dweights"]) and alive(case["dl_dbiases"])):
            return case
    raise AssertionError(f"no network with K={K}, D={D}, D_i={D_i}, D_o={D_o} has the properties the checks need")


def hidden_networks(shapes: Sequence[Sequence[int]], backward: bool) -> list[dict]:
    """One network of each (K, D, D_i, D_o) in `shapes`, drawn now from the operating system's
    randomness, with its exact results: a case's networks, new at every grading."""
    rng = fresh_generator()
    return [random_network(*shape, rng=rng, backward=backward) for shape in shapes]


def kink_network(K: int, D: int, D_i: int, D_o: int, rng: np.random.Generator) -> dict:
    """A network of these sizes with one hidden unit exactly at its ReLU kink and one 3e-10 above
    it, an output below zero and a large loss, with its exact gradients.

    Its values are multiples of 1/8 up to the kink, so the unit at 0 is exactly 0 whatever the
    order of the sums: there the derivative is I[f > 0] = 0, and `f >= 0` gives other gradients,
    of the weights among them (so that its message is always about them), and `distinct` ones (on
    rare draws the unit at the kink hardly reaches the loss, and `f >= 0` differs by round-off).
    Finite differences cannot match backpropagation at the other unit: a step large enough to beat
    round-off on a loss of about 10^8 crosses the kink, and a smaller one drowns in round-off.
    """
    layer_sizes = [D_i] + [D] * K + [D_o]
    for _ in range(1000):  # a few suffice for the notebook's sizes
        weights = [rng.integers(-16, 17, size=(layer_sizes[k + 1], layer_sizes[k])) / 8 for k in range(K + 1)]
        biases = [rng.integers(-16, 17, size=(layer_sizes[k + 1], 1)) / 8 for k in range(K + 1)]
        net_input = rng.integers(-16, 17, size=(D_i, 1)) / 8
        target = np.full((D_o, 1), 5000.0)
        all_f, _ = exact_forward(weights, biases, net_input)
        active = [unit for unit, f in enumerate(all_f[1]) if f > 0]
        if len(active) < 2:
            continue
        at_zero, above = active[0], active[1]
        biases[1][at_zero, 0] -= all_f[1][at_zero]
        biases[1][above, 0] += 3e-10 - all_f[1][above]
        all_f, all_h = exact_forward(weights, biases, net_input)
        dweights, dbiases = exact_backward(weights, all_f, all_h, target)
        greater_or_equal = exact_backward(weights, all_f, all_h, target, INDICATOR_MISTAKES["indicator at the kink"])
        if all_f[1][at_zero] == 0.0 and abs(dbiases[1][above][0]) > 1.0 and distinct(greater_or_equal[:1], [dweights]) \
                and max(all_f[-1]) < 0 and alive(dweights) and alive(dbiases):  # output below zero, as the others'
            name = "a network with a unit exactly at its ReLU kink, one just above it, and a large loss"
            return reference_case(dict(name=name, weights=weights, biases=biases, net_input=net_input, y=target))
    raise AssertionError(f"no network with K={K}, D={D} has two units at the kink that matter")


def hidden_kink_network(shape: Sequence[int]) -> dict:
    """The kink case's network, of sizes (K, D, D_i, D_o), drawn now from the operating system's randomness."""
    return kink_network(*shape, rng=fresh_generator())
