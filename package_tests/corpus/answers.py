"""A corpus of student answers: mistakes students make, and correct answers written differently.

Every answer is the code of one question's answer cell; the other four cells keep the correct
baseline. A wrong answer must lose points on its own question and no other, and its failure
output must contain each text in `says` (the quantity and the problem). A correct answer must get
full marks everywhere.
"""

import textwrap
from dataclasses import dataclass, field

from built import TOY, points_without, printed_target, sizes


def _code(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"


GIVEN_Q12 = "dldf3 = 2 * (f3 - y)\ndldh3 = omega3 * dldf3\n"

BASELINE: dict[str, str] = {
    "q1.1": _code("""
        f0 = beta0 + omega0 * x
        h1 = np.sin(f0)
        f1 = beta1 + omega1 * h1
        h2 = np.exp(f1)
        f2 = beta2 + omega2 * h2
        h3 = np.cos(f2)
        f3 = beta3 + omega3 * h3
        l_i = (f3 - y) ** 2
        """),
    "q1.2": GIVEN_Q12 + _code("""
        dldf2 = -np.sin(f2) * dldh3
        dldh2 = omega2 * dldf2
        dldf1 = np.exp(f1) * dldh2
        dldh1 = omega1 * dldf1
        dldf0 = np.cos(f0) * dldh1
        """),
    "q1.3": _code("""
        dldbeta3 = dldf3
        dldomega3 = dldf3 * h3
        dldbeta2 = dldf2
        dldomega2 = dldf2 * h2
        dldbeta1 = dldf1
        dldomega1 = dldf1 * h1
        dldbeta0 = dldf0
        dldomega0 = dldf0 * x
        """),
    "q2.1": _code("""
        def compute_network_output(net_input, all_weights, all_biases):
            K = len(all_weights) - 1
            all_f = [None] * (K + 1)
            all_h = [None] * (K + 1)
            all_h[0] = net_input

            for layer in range(K):
                all_f[layer] = all_biases[layer] + all_weights[layer] @ all_h[layer]
                all_h[layer + 1] = ReLU(all_f[layer])

            all_f[K] = all_biases[K] + all_weights[K] @ all_h[K]
            net_output = all_f[K]
            return net_output, all_f, all_h
        """),
    "q2.2": _code("""
        def backward_pass(all_weights, all_biases, all_f, all_h, y):
            K = len(all_weights) - 1
            all_dl_dweights = [None] * (K + 1)
            all_dl_dbiases = [None] * (K + 1)
            all_dl_df = [None] * (K + 1)
            all_dl_dh = [None] * (K + 1)

            all_dl_df[K] = d_loss_d_output(all_f[K], y)
            for layer in range(K, -1, -1):
                all_dl_dbiases[layer] = np.array(all_dl_df[layer])
                all_dl_dweights[layer] = all_dl_df[layer] @ all_h[layer].T
                all_dl_dh[layer] = all_weights[layer].T @ all_dl_df[layer]
                if layer > 0:
                    all_dl_df[layer - 1] = indicator_function(all_f[layer - 1]) * all_dl_dh[layer]

            return all_dl_dweights, all_dl_dbiases
        """),
}


@dataclass(frozen=True)
class Answer:
    """One student's code for one question's answer cell."""

    name: str
    question: str
    code: str
    wrong: bool
    says: tuple[str, ...] = field(default=())  # texts the student must see for this mistake
    quiet: tuple[str, ...] = field(default=())  # texts the student must not see (a step that is right, a wrong cause)
    points: float | None = None  # the exact points the question must get, where one mistake costs only its cases

    def cells(self) -> dict[str, str]:
        """The code of all five answer cells: this answer's, and the baseline elsewhere."""
        return {**BASELINE, self.question: self.code}


def changed(question: str, old: str, new: str) -> str:
    """The baseline of `question` with the one occurrence of `old` replaced by `new`."""
    baseline = BASELINE[question]
    assert baseline.count(old) == 1, f"{old!r} must occur once in the baseline of {question}"
    return baseline.replace(old, new)


def after(helper: str, code: str) -> str:
    """`code` preceded by a helper function the student wrote in the same cell."""
    return _code(helper) + "\n\n" + code


def wrong(name: str, question: str, code: str, *says: str, quiet: tuple[str, ...] = (),
          points: float | None = None) -> Answer:
    return Answer(name, question, code, wrong=True, says=says, quiet=quiet, points=points)


# What no message about a crash or a wrong value may say unless the answer reads the notebook's
# globals: blaming the depth for a mistake of another kind sends the student the wrong way.
BLAMES_THE_DEPTH = ("any depth", "from its arguments", "from the arguments")


def correct(name: str, question: str, code: str) -> Answer:
    return Answer(name, question, code, wrong=False)


# Values typed in from the printed checks, as the original printed them (3 places) and as this
# notebook prints them (6 places): the built public tests' values, rounded.
TOY_PRINTED = {name: round(value, 6) for name, value in TOY.items()}
# The output of the notebook's network as the notebook prints it.
PRINTED_OUTPUT = [[float(value)] for value in printed_target("output").strip("[]").split()]
Q11_NAMES = ("f0", "h1", "f1", "h2", "f2", "h3", "f3", "l_i")
Q12_NAMES = ("dldf2", "dldh2", "dldf1", "dldh1", "dldf0")
Q13_NAMES = ("dldbeta3", "dldomega3", "dldbeta2", "dldomega2", "dldbeta1", "dldomega1", "dldbeta0", "dldomega0")


def typed_in(names: tuple[str, ...], places: int) -> str:
    return "".join(f"{name} = {round(TOY_PRINTED[name], places)}\n" for name in names)


def toy_finite_differences(step: float) -> str:
    """q1.3 by centred finite differences of the given `loss`, with step `step`."""
    return _code(f"""
        def centred(name):
            parameters = dict(beta0=beta0, beta1=beta1, beta2=beta2, beta3=beta3,
                              omega0=omega0, omega1=omega1, omega2=omega2, omega3=omega3)
            up = dict(parameters, **{{name: parameters[name] + {step!r}}})
            down = dict(parameters, **{{name: parameters[name] - {step!r}}})
            return (loss(x, y, **up) - loss(x, y, **down)) / (2 * {step!r})

        dldbeta0, dldbeta1, dldbeta2, dldbeta3 = (centred(f"beta{{k}}") for k in range(4))
        dldomega0, dldomega1, dldomega2, dldomega3 = (centred(f"omega{{k}}") for k in range(4))
        """)


def network_finite_differences(step: float) -> str:
    """q2.2 by centred finite differences through the student's own forward pass."""
    return _code(f"""
        def backward_pass(all_weights, all_biases, all_f, all_h, y):
            def gradient(array):
                estimate = np.zeros_like(array)
                for index in np.ndindex(array.shape):
                    saved = array[index]
                    array[index] = saved + {step!r}
                    up = least_squares_loss(compute_network_output(all_h[0], all_weights, all_biases)[0], y)
                    array[index] = saved - {step!r}
                    down = least_squares_loss(compute_network_output(all_h[0], all_weights, all_biases)[0], y)
                    array[index] = saved
                    estimate[index] = (up - down) / (2 * {step!r})
                return estimate

            return [gradient(w) for w in all_weights], [gradient(b) for b in all_biases]
        """)


WRONG: list[Answer] = [
    # q1.1: the forward pass of the toy model
    wrong("cos for sin", "q1.1", changed("q1.1", "np.sin(f0)", "np.cos(f0)"), "`h1`", "expected value",
          "fix it first", quiet=("`f2`",)),
    wrong("sin for cos", "q1.1", changed("q1.1", "np.cos(f2)", "np.sin(f2)"), "`h3`", "wrong function",
          "cosine", quiet=("`f3`",)),
    wrong("exp of f0", "q1.1", changed("q1.1", "np.exp(f1)", "np.exp(f0)"), "`h2`", "expected value"),
    wrong("f where h belongs", "q1.1", changed("q1.1", "omega2 * h2", "omega2 * f1"), "`f2`", "does not follow"),
    wrong("swapped beta and omega", "q1.1", changed("q1.1", "beta0 + omega0 * x", "omega0 + beta0 * x"),
          "`f0`", "expected value"),
    wrong("loss not squared", "q1.1", changed("q1.1", "(f3 - y) ** 2", "f3 - y"), "`l_i`", "squared difference"),
    wrong("typed in, 3 places", "q1.1", typed_in(Q11_NAMES, 3), "`h1`", "expected value"),
    wrong("typed in, 6 places", "q1.1", typed_in(Q11_NAMES, 6), f"stays {TOY_PRINTED['f0']:.6f} when the parameters change",
          "never type numbers in"),
    # q1.2: the backward pass of the toy model
    wrong("given dldf3 with its sign flipped", "q1.2", changed("q1.2", "2 * (f3 - y)", "2 * (y - f3)"),
          "`dldf3`", "wrong sign"),
    wrong("derivative of cos without minus", "q1.2", changed("q1.2", "-np.sin(f2)", "np.sin(f2)"),
          "`dldf2`", "wrong sign"),
    wrong("derivative of cos is cos", "q1.2", changed("q1.2", "-np.sin(f2)", "-np.cos(f2)"), "`dldf2`"),
    wrong("derivative of sin with a minus", "q1.2", changed("q1.2", "np.cos(f0)", "-np.cos(f0)"),
          "`dldf0`", "wrong sign"),
    wrong("exp at f2", "q1.2", changed("q1.2", "np.exp(f1)", "np.exp(f2)"), "`dldf1`"),
    wrong("h where f belongs", "q1.2", changed("q1.2", "np.cos(f0)", "np.cos(h1)"), "`dldf0`"),
    wrong("omega0 for omega1", "q1.2", changed("q1.2", "omega1 * dldf1", "omega0 * dldf1"), "`dldh1`"),
    wrong("skips the weight", "q1.2", changed("q1.2", "np.exp(f1) * dldh2", "np.exp(f1) * dldf2"), "`dldf1`"),
    wrong("typed in, 3 places", "q1.2", GIVEN_Q12 + typed_in(Q12_NAMES, 3), "`dldf2`", "expected value"),
    wrong("typed in, 6 places", "q1.2", GIVEN_Q12 + typed_in(Q12_NAMES, 6), "`dldf2`", f"stays {TOY_PRINTED['dldf2']:.6f}"),
    wrong("local derivative without the upstream factor", "q1.2", changed("q1.2", "-np.sin(f2) * dldh3", "-np.sin(f2)"),
          "`dldf2`", "expected value", quiet=("`dldf3`", "`dldh3`")),
    wrong("reshapes its argument in place", "q2.1", changed("q2.1", "all_h[0] = net_input",
                                                            "all_h[0] = net_input.copy()\n    net_input.shape = (net_input.size,)"),
          "changed one of its arguments", points=points_without("q2.1", "test_inputs_unchanged")),
    wrong("cos written as sqrt(1 - sin**2)", "q1.2", changed("q1.2", "np.cos(f0)", "np.sqrt(1 - h1 ** 2)"),
          "dl/df0", "derivative of sin is cos", points=points_without("q1.2", "test_backward_input_end")),
    wrong("-sin written as -sqrt(1 - cos**2)", "q1.2", changed("q1.2", "-np.sin(f2)", "-np.sqrt(1 - h3 ** 2)"),
          "dl/df2", "derivative of cos", points=points_without("q1.2", "test_backward_output_end")),
    wrong("dl/df3 as 2 sqrt(l_i)", "q1.2", GIVEN_Q12.replace("2 * (f3 - y)", "2 * np.sqrt(l_i)") + BASELINE["q1.2"][len(GIVEN_Q12):],
          "`dldf3`"),
    wrong("finite differences of the tail", "q1.2", GIVEN_Q12 + _code("""
        def tail_loss(f2):
            return (beta3 + omega3 * np.cos(f2) - y) ** 2

        step = 1e-5
        dldf2 = (tail_loss(f2 + step) - tail_loss(f2 - step)) / (2 * step)
        dldh2 = omega2 * dldf2
        dldf1 = np.exp(f1) * dldh2
        dldh1 = omega1 * dldf1
        dldf0 = np.cos(f0) * dldh1
        """), "dl/df2", "do not all follow"),
    wrong("forward values reused as scratch names", "q1.2", GIVEN_Q12 + _code("""
        h3 = -np.sin(f2)
        dldf2 = h3 * dldh3
        dldh2 = omega2 * dldf2
        h2 = np.exp(f1)
        dldf1 = h2 * dldh2
        dldh1 = omega1 * dldf1
        h1 = np.cos(f0)
        dldf0 = h1 * dldh1
        """), "change `h", "use new names"),
    # q1.3: the parameter derivatives of the toy model
    wrong("h of the next layer", "q1.3", changed("q1.3", "dldf1 * h1", "dldf1 * h2"), "`dldomega1`"),
    wrong("forgot x", "q1.3", changed("q1.3", "dldf0 * x", "dldf0"), "`dldomega0`"),
    wrong("h where f belongs", "q1.3", changed("q1.3", "dldbeta2 = dldf2", "dldbeta2 = dldh2"), "`dldbeta2`"),
    wrong("f where h belongs", "q1.3", changed("q1.3", "dldf2 * h2", "dldf2 * f2"), "`dldomega2`"),
    wrong("typed in, 3 places", "q1.3", typed_in(Q13_NAMES, 3), "`dldbeta3`", "expected value"),
    wrong("typed in, 6 places", "q1.3", typed_in(Q13_NAMES, 6), f"stays {TOY_PRINTED['dldbeta3']:.6f}", "do not all follow"),
    wrong("every weight derivative times f instead of h", "q1.3", _code("""
        dldbeta3, dldbeta2, dldbeta1, dldbeta0 = dldf3, dldf2, dldf1, dldf0
        dldomega3, dldomega2, dldomega1, dldomega0 = dldf3 * f3, dldf2 * f2, dldf1 * f1, dldf0 * f0
        """), "`dldomega3`", "dl/domega_k = h_k dl/df_k", quiet=("`dldomega0`",),
          points=points_without("q1.3", "test_parameter_values", "test_parameters_weights")),
    wrong("weight derivative without the upstream factor", "q1.3", changed("q1.3", "dldf2 * h2", "h2"),
          "`dldomega2`", quiet=("`dldomega3`",)),
    *[wrong(f"finite differences, step {step:g}", "q1.3", toy_finite_differences(step), "do not all follow")
      for step in (1e-3, 1e-5, 8.2e-7, 1e-8)],
    # q2.1: the forward pass of a deep network
    wrong("ReLU on the output", "q2.1", changed("q2.1", "all_f[K] = all_biases[K] + all_weights[K] @ all_h[K]",
                                                "all_f[K] = ReLU(all_biases[K] + all_weights[K] @ all_h[K])"),
          "`net_output`", "ReLU applied where there should be none", quiet=BLAMES_THE_DEPTH),
    wrong("no ReLU", "q2.1", changed("q2.1", "ReLU(all_f[layer])", "all_f[layer]"),
          "`all_h[1]`", "the ReLU is missing"),
    wrong("no biases", "q2.1", changed("q2.1", "all_biases[layer] + all_weights", "all_weights"), "`all_f[0]`"),
    wrong("no output bias", "q2.1", changed("q2.1", "all_biases[K] + all_weights[K]", "all_weights[K]"),
          "`net_output`"),
    wrong("global K", "q2.1", changed("q2.1", "    K = len(all_weights) - 1\n", ""),
          "`compute_network_output` reads the notebook's global `K`", points=points_without("q2.1", "test_other_networks")),
    wrong("global sizes", "q2.1", changed("q2.1", "        all_h[layer + 1] = ReLU(all_f[layer])",
                                          "        all_h[layer + 1] = np.zeros((D, 1))\n"
                                          "        all_h[layer + 1][:] = ReLU(all_f[layer])"),
          "`compute_network_output` reads the notebook's global sizes", points=points_without("q2.1", "test_other_networks")),
    wrong("global weights and biases", "q2.1", changed("q2.1", "(net_input, all_weights, all_biases)",
                                                       "(net_input, weights, biases)"),
          "reads the notebook's own network (`all_weights`, `all_biases`, `net_input`) instead of its arguments",
          points=0),
    wrong("loop stops a layer early", "q2.1", changed("q2.1", "range(K)", "range(K - 1)"),
          "compute_network_output"),
    wrong("weights transposed", "q2.1", changed("q2.1", "all_weights[layer] @", "all_weights[layer].T @"),
          "compute_network_output"),
    wrong("elementwise product", "q2.1", changed("q2.1", "all_weights[K] @ all_h[K]", "all_weights[K] * all_h[K].T"),
          "`net_output`"),
    wrong("returns all_h before all_f", "q2.1", changed("q2.1", "return net_output, all_f, all_h",
                                                        "return net_output, all_h, all_f"),
          "`all_h[0]`", "shape"),
    wrong("output typed in, 3 places", "q2.1", changed("q2.1", "all_f[K] = all_biases[K] + all_weights[K] @ all_h[K]",
                                                       f"all_f[K] = np.array({[[round(v, 3) for v in row] for row in PRINTED_OUTPUT]})"),
          "`net_output`"),
    wrong("output typed in, 6 places", "q2.1", changed("q2.1", "all_f[K] = all_biases[K] + all_weights[K] @ all_h[K]",
                                                       f"all_f[K] = np.array({PRINTED_OUTPUT})"), "`all_f[", "shape"),
    wrong("changes the caller's biases", "q2.1", changed("q2.1", "all_f[layer] = all_biases[layer] + all_weights[layer] @ all_h[layer]",
                                                         "all_f[layer] = all_biases[layer]\n        all_f[layer] += all_weights[layer] @ all_h[layer]"),
          "changed one of its arguments", points=points_without("q2.1", "test_inputs_unchanged")),
    wrong("first layer before the loop", "q2.1", _code("""
        def compute_network_output(net_input, all_weights, all_biases):
            K = len(all_weights) - 1
            all_f = [None] * (K + 1)
            all_h = [None] * (K + 1)
            all_h[0] = net_input
            all_f[0] = all_biases[0] + all_weights[0] @ all_h[0]
            all_h[1] = ReLU(all_f[0])
            for layer in range(1, K):
                all_f[layer] = all_biases[layer] + all_weights[layer] @ all_h[layer]
                all_h[layer + 1] = ReLU(all_f[layer])
            all_f[K] = all_biases[K] + all_weights[K] @ all_h[K]
            return all_f[K], all_f, all_h
        """), "no hidden layer", "raised IndexError", quiet=BLAMES_THE_DEPTH,
          points=points_without("q2.1", "test_other_networks")),
    # q2.2: the backward pass of a deep network
    wrong("no ReLU derivative", "q2.2", changed("q2.2", "indicator_function(all_f[layer - 1]) * ", ""),
          "`backward_pass` leaves out the ReLU indicator"),
    wrong("ReLU derivative of the wrong layer", "q2.2", changed("q2.2", "indicator_function(all_f[layer - 1])",
                                                               "indicator_function(all_f[layer])"),
          "of the wrong layer", "I[f_(k-1) > 0]", quiet=BLAMES_THE_DEPTH),
    wrong("the placeholder left below the output", "q2.2", _code("""
        def backward_pass(all_weights, all_biases, all_f, all_h, y):
            K = len(all_weights) - 1
            all_dl_dweights = [np.zeros_like(w) for w in all_weights]
            all_dl_dbiases = [np.zeros_like(b) for b in all_biases]
            all_dl_dbiases[K] = d_loss_d_output(all_f[K], y)
            all_dl_dweights[K] = all_dl_dbiases[K] @ all_h[K].T
            for layer in range(K - 1, -1, -1):
                ...
            return all_dl_dweights, all_dl_dbiases
        """), f"`all_dl_dweights[{sizes()['K'] - 1}]` is all zeros", quiet=("ReLU applied", *BLAMES_THE_DEPTH), points=0),
    wrong("sign of the loss derivative", "q2.2", changed("q2.2", "d_loss_d_output(all_f[K], y)",
                                                         "2 * (y - all_f[K])"), "wrong sign"),
    wrong("weights not transposed", "q2.2", changed("q2.2", "all_weights[layer].T @", "all_weights[layer] @"),
          "`backward_pass` raised ValueError", quiet=BLAMES_THE_DEPTH),
    wrong("gradient transposed", "q2.2", changed("q2.2", "all_dl_df[layer] @ all_h[layer].T",
                                                 "all_h[layer] @ all_dl_df[layer].T"),
          "`all_dl_dweights[", "transpose"),
    wrong("flat bias gradients", "q2.2", changed("q2.2", "np.array(all_dl_df[layer])", "all_dl_df[layer].ravel()"),
          "`all_dl_dbiases[", "wrong layout"),
    wrong("f where h belongs", "q2.2", changed("q2.2", "all_dl_df[layer] @ all_h[layer].T",
                                               "all_dl_df[layer] @ (all_f[layer - 1] if layer else all_h[0]).T"),
          "`all_dl_dweights["),
    wrong("loop skips layer 0", "q2.2", changed("q2.2", "range(K, -1, -1)", "range(K, 0, -1)"),
          "`all_dl_dweights[0]`"),
    wrong("global K", "q2.2", changed("q2.2", "    K = len(all_weights) - 1\n", ""),
          "`backward_pass` reads the notebook's global `K`: take the depth from its arguments",
          points=points_without("q2.2", "test_other_networks")),
    wrong("global y", "q2.2", changed("q2.2", "all_h, y):", "all_h, target):"),
          "`backward_pass` reads the notebook's own target", points=0),
    wrong("returns the biases first", "q2.2", changed("q2.2", "return all_dl_dweights, all_dl_dbiases",
                                                      "return all_dl_dbiases, all_dl_dweights"),
          "bias gradients first"),
    wrong("loss derivative in place", "q2.2", changed("q2.2", "    all_dl_df[K] = d_loss_d_output(all_f[K], y)\n",
                                                      "    all_dl_df[K] = all_f[K]\n    all_dl_df[K] -= y\n"
                                                      "    all_dl_df[K] *= 2\n"), "changed one of its arguments",
          points=points_without("q2.2", "test_inputs_unchanged")),
    wrong("ReLU mask in place", "q2.2", after("""
              def mask(f):
                  f[f > 0] = 1
                  f[f <= 0] = 0
                  return f
              """, changed("q2.2", "indicator_function(all_f[layer - 1])", "mask(all_f[layer - 1])")),
          "changed one of its arguments", points=points_without("q2.2", "test_inputs_unchanged")),
    wrong("ReLU derivative as f >= 0", "q2.2", _code("""
        def backward_pass(all_weights, all_biases, all_f, all_h, y):
            K = len(all_biases) - 1
            all_dl_dweights = [None] * (K + 1)
            all_dl_dbiases = [None] * (K + 1)
            dl_df = 2 * (all_f[K] - y)
            for layer in range(K, -1, -1):
                all_dl_dbiases[layer] = dl_df
                all_dl_dweights[layer] = np.matmul(dl_df, all_h[layer].T)
                dl_dh = np.matmul(all_weights[layer].T, dl_df)
                if layer > 0:
                    dl_df = (all_f[layer - 1] >= 0) * dl_dh
            return all_dl_dweights, all_dl_dbiases
        """), "exactly at its ReLU kink", points=points_without("q2.2", "test_exact_at_a_kink")),
    wrong("np.heaviside(f, 1)", "q2.2", changed("q2.2", "indicator_function(all_f[layer - 1])",
                                               "np.heaviside(all_f[layer - 1], 1.0)"), "exactly at its ReLU kink",
          points=points_without("q2.2", "test_exact_at_a_kink")),
    wrong("gradients in reversed layer order", "q2.2", changed("q2.2", "return all_dl_dweights, all_dl_dbiases",
                                                               "return all_dl_dweights[::-1], all_dl_dbiases[::-1]"),
          "reverse order"),
    *[wrong(f"finite differences, step {step:g}", "q2.2", network_finite_differences(step), "ReLU kink")
      for step in (1e-4, 1e-6, 1e-8, 1e-10)],
]

CORRECT: list[Answer] = [
    correct("np.matrix products", "q2.1", changed("q2.1", "all_weights[layer] @ all_h[layer]",
                                                  "np.asmatrix(all_weights[layer]) * np.asmatrix(all_h[layer])")),
    correct("a namedtuple returned", "q2.1", "from collections import namedtuple\n\n"
            "Forward = namedtuple('Forward', 'net_output all_f all_h')\n\n"
            + changed("q2.1", "return net_output, all_f, all_h", "return Forward(net_output, all_f, all_h)")),
    correct("a namedtuple of gradients", "q2.2", "from collections import namedtuple\n\n"
            "Gradients = namedtuple('Gradients', 'weights biases')\n\n"
            + changed("q2.2", "return all_dl_dweights, all_dl_dbiases", "return Gradients(all_dl_dweights, all_dl_dbiases)")),
    correct(".item() and .copy() of the given values", "q1.2", GIVEN_Q12.replace("2 * (f3 - y)", "(2 * (f3.copy() - y)).item()")
            + BASELINE["q1.2"][len(GIVEN_Q12):]),
    correct("%matplotlib inline on top", "q1.1", "%matplotlib inline\n" + BASELINE["q1.1"]),
    correct("a %%time cell", "q1.1", "%%time\n" + BASELINE["q1.1"]),
    correct("a %%capture cell", "q1.2", "%%capture\n" + BASELINE["q1.2"]),
    correct("the check's result kept", "q1.1", BASELINE["q1.1"] + 'result = grader.check("q1.1")\nresult\n'),
    correct("the check displayed", "q1.2", BASELINE["q1.2"] + 'display(grader.check("q1.2"))\n'),
    correct("a function that sets globals", "q1.1", "def forward_pass():\n    global f0, h1, f1, h2, f2, h3, f3, l_i\n"
            + textwrap.indent(BASELINE["q1.1"], "    ") + "\n\nforward_pass()\n"),
    correct("a loop over locals()", "q1.3", _code("""
        for k, h in enumerate([x, h1, h2, h3]):
            locals()[f"dldbeta{k}"] = locals()[f"dldf{k}"]
            locals()[f"dldomega{k}"] = h * locals()[f"dldf{k}"]
        """)),
    correct("math module", "q1.1", _code("""
        f0 = beta0 + omega0 * x
        h1 = math.sin(f0)
        f1 = beta1 + omega1 * h1
        h2 = math.exp(f1)
        f2 = beta2 + omega2 * h2
        h3 = math.cos(f2)
        f3 = beta3 + omega3 * h3
        l_i = (f3 - y) * (f3 - y)
        """)),
    correct("terms reordered", "q1.1", _code("""
        f0 = x * omega0 + beta0
        h1 = np.sin(f0)
        f1 = h1 * omega1 + beta1
        h2 = np.exp(f1)
        f2 = h2 * omega2 + beta2
        h3 = np.cos(f2)
        f3 = h3 * omega3 + beta3
        l_i = np.square(y - f3)
        """)),
    correct("a function of the parameters", "q1.1", _code("""
        def forward(x, y, beta0, beta1, beta2, beta3, omega0, omega1, omega2, omega3):
            f0 = beta0 + omega0 * x
            h1 = np.sin(f0)
            f1 = beta1 + omega1 * h1
            h2 = np.exp(f1)
            f2 = beta2 + omega2 * h2
            h3 = np.cos(f2)
            f3 = beta3 + omega3 * h3
            return f0, h1, f1, h2, f2, h3, f3, (f3 - y) ** 2

        f0, h1, f1, h2, f2, h3, f3, l_i = forward(x, y, beta0, beta1, beta2, beta3, omega0, omega1, omega2, omega3)
        """)),
    correct("local derivatives under names of their own", "q1.2", GIVEN_Q12 + _code("""
        dh3_df2 = -np.sin(f2)
        dldf2 = dh3_df2 * dldh3
        dldh2 = omega2 * dldf2
        dh2_df1 = np.exp(f1)
        dldf1 = dh2_df1 * dldh2
        dldh1 = omega1 * dldf1
        dh1_df0 = np.cos(f0)
        dldf0 = dh1_df0 * dldh1
        """)),
    correct("reuses h2 for exp(f1)", "q1.2", changed("q1.2", "np.exp(f1) * dldh2", "h2 * dldh2")),
    correct("math module, factors swapped", "q1.2", GIVEN_Q12 + _code("""
        dldf2 = dldh3 * -math.sin(f2)
        dldh2 = dldf2 * omega2
        dldf1 = dldh2 * math.exp(f1)
        dldh1 = dldf1 * omega1
        dldf0 = dldh1 * math.cos(f0)
        """)),
    correct("weights times the beta derivatives", "q1.3", _code("""
        dldbeta0, dldbeta1, dldbeta2, dldbeta3 = dldf0, dldf1, dldf2, dldf3
        dldomega0 = x * dldbeta0
        dldomega1 = h1 * dldbeta1
        dldomega2 = h2 * dldbeta2
        dldomega3 = h3 * dldbeta3
        """)),
    correct("a loop over globals()", "q1.3", _code("""
        for k, h in enumerate([x, h1, h2, h3]):
            globals()[f"dldbeta{k}"] = globals()[f"dldf{k}"]
            globals()[f"dldomega{k}"] = h * globals()[f"dldf{k}"]
        """)),
    correct("floats", "q1.3", _code("""
        dldbeta3 = float(dldf3)
        dldomega3 = float(h3 * dldf3)
        dldbeta2 = float(dldf2)
        dldomega2 = float(h2 * dldf2)
        dldbeta1 = float(dldf1)
        dldomega1 = float(h1 * dldf1)
        dldbeta0 = float(dldf0)
        dldomega0 = float(x * dldf0)
        """)),
    correct("np.matmul and np.maximum", "q2.1", _code("""
        def compute_network_output(net_input, all_weights, all_biases):
            K = len(all_weights) - 1
            all_f = [None] * (K + 1)
            all_h = [None] * (K + 1)
            all_h[0] = net_input
            for layer in range(K):
                all_f[layer] = np.matmul(all_weights[layer], all_h[layer]) + all_biases[layer]
                all_h[layer + 1] = np.maximum(all_f[layer], 0)
            all_f[K] = np.matmul(all_weights[K], all_h[K]) + all_biases[K]
            return all_f[K], all_f, all_h
        """)),
    correct("np.dot and a mask", "q2.1", _code("""
        def compute_network_output(net_input, all_weights, all_biases):
            K = len(all_weights) - 1
            all_f = [None] * (K + 1)
            all_h = [None] * (K + 1)
            all_h[0] = net_input
            for layer in range(K):
                all_f[layer] = all_biases[layer] + np.dot(all_weights[layer], all_h[layer])
                all_h[layer + 1] = all_f[layer] * (all_f[layer] > 0)
            all_f[K] = all_biases[K] + np.dot(all_weights[K], all_h[K])
            return all_f[K], all_f, all_h
        """)),
    correct("appends, depth from the biases", "q2.1", _code("""
        def compute_network_output(net_input, all_weights, all_biases):
            all_f, all_h = [], [net_input]
            for weights, biases in zip(all_weights, all_biases):
                all_f.append(biases + weights @ all_h[-1])
                if len(all_f) < len(all_biases):
                    all_h.append(ReLU(all_f[-1]))
            return all_f[-1], all_f, all_h
        """)),
    correct("explicit loops", "q2.1", _code("""
        def compute_network_output(net_input, all_weights, all_biases):
            depth = len(all_biases)
            all_f, all_h = [], [net_input]
            for layer in range(depth):
                weights, biases, h = all_weights[layer], all_biases[layer], all_h[layer]
                f = np.zeros((weights.shape[0], 1))
                for row in range(weights.shape[0]):
                    total = biases[row, 0]
                    for column in range(weights.shape[1]):
                        total += weights[row, column] * h[column, 0]
                    f[row, 0] = total
                all_f.append(f)
                if layer < depth - 1:
                    all_h.append(np.where(f > 0, f, 0.0))
            return all_f[-1], all_f, all_h
        """)),
    correct("np.outer and np.dot", "q2.2", changed("q2.2", "all_dl_df[layer] @ all_h[layer].T",
                                                   "np.outer(all_dl_df[layer], all_h[layer])")
            .replace("all_weights[layer].T @ all_dl_df[layer]", "np.dot(all_weights[layer].T, all_dl_df[layer])")),
    correct("appends, reversed", "q2.2", _code("""
        def backward_pass(all_weights, all_biases, all_f, all_h, y):
            dl_dweights, dl_dbiases = [], []
            dl_df = d_loss_d_output(all_f[-1], y)
            for layer in reversed(range(len(all_biases))):
                dl_dbiases.append(dl_df.copy())
                dl_dweights.append(dl_df @ all_h[layer].T)
                if layer > 0:
                    dl_df = np.where(all_f[layer - 1] > 0, all_weights[layer].T @ dl_df, 0.0)
            return dl_dweights[::-1], dl_dbiases[::-1]
        """)),
    correct("mask from h", "q2.2", changed("q2.2", "indicator_function(all_f[layer - 1])",
                                           "(all_h[layer] > 0)")),
    correct("broadcast outer product", "q2.2", changed("q2.2", "all_dl_df[layer] @ all_h[layer].T",
                                                       "all_dl_df[layer] * all_h[layer].T")),
    correct("explicit loops", "q2.2", _code("""
        def backward_pass(all_weights, all_biases, all_f, all_h, y):
            depth = len(all_weights)
            all_dl_dweights = [None] * depth
            all_dl_dbiases = [None] * depth
            dl_df = d_loss_d_output(all_f[depth - 1], y)
            for layer in range(depth - 1, -1, -1):
                weights, h = all_weights[layer], all_h[layer]
                rows, columns = weights.shape
                dl_dweights = np.zeros((rows, columns))
                dl_dh = np.zeros((columns, 1))
                for row in range(rows):
                    for column in range(columns):
                        dl_dweights[row, column] = dl_df[row, 0] * h[column, 0]
                        dl_dh[column, 0] += weights[row, column] * dl_df[row, 0]
                all_dl_dweights[layer] = dl_dweights
                all_dl_dbiases[layer] = dl_df
                if layer > 0:
                    dl_df = np.zeros_like(dl_dh)
                    for unit in range(columns):
                        if all_f[layer - 1][unit, 0] > 0:
                            dl_df[unit, 0] = dl_dh[unit, 0]
            return all_dl_dweights, all_dl_dbiases
        """)),
    correct("copies, then in place", "q2.2", after("""
                def relu_gradient(f, dl_dh):
                    dl_df = np.array(dl_dh)
                    dl_df[f <= 0] = 0
                    return dl_df
                """, changed("q2.2", "indicator_function(all_f[layer - 1]) * all_dl_dh[layer]",
                             "relu_gradient(all_f[layer - 1], all_dl_dh[layer])"))),
]

# The common mistakes a message names outright, each in words that no message of another mistake
# holds, and what a message must not say of an answer that makes it (a cause it does not have).
MISTAKE_WORDS = {
    "ReLU on the output": "a ReLU applied where there should be none",
    "missing or wrong ReLU indicator": "the ReLU indicator",
    "wrong function": "the wrong function",
    "wrong sign": "the wrong sign",
    "missing upstream factor": "the upstream factor",
    "global K": "the notebook's global `K`",
}
MISTAKE_QUIET = {
    "ReLU on the output": ("all zeros", "never computed", "entries wrong"),
    "missing or wrong ReLU indicator": ("entries wrong", "is wrong"),
    "wrong function": ("round", "typed in", "does not follow"),
    "wrong sign": ("does not follow",),
    "missing upstream factor": ("does not follow",),
    "global K": BLAMES_THE_DEPTH[:1],
}

# More answers with these mistakes, written otherwise.
WRONG += [
    wrong("ReLU on the returned output", "q2.1", changed("q2.1", "net_output = all_f[K]", "net_output = ReLU(all_f[K])"),
          "`net_output`"),
    wrong("the last activation returned as the output", "q2.1", _code("""
        def compute_network_output(net_input, all_weights, all_biases):
            all_f, all_h = [], [net_input]
            for weights, biases in zip(all_weights, all_biases):
                all_f.append(biases + weights @ all_h[-1])
                all_h.append(ReLU(all_f[-1]))
            return all_h[-1], all_f, all_h[:-1]
        """), "`net_output`"),
    wrong("no ReLU indicator, with np.dot", "q2.2", _code("""
        def backward_pass(all_weights, all_biases, all_f, all_h, y):
            dl_dweights, dl_dbiases = [None] * len(all_weights), [None] * len(all_weights)
            dl_df = 2 * (all_f[-1] - y)
            for layer in range(len(all_weights) - 1, -1, -1):
                dl_dbiases[layer] = dl_df
                dl_dweights[layer] = np.dot(dl_df, all_h[layer].T)
                dl_df = np.dot(all_weights[layer].T, dl_df)
            return dl_dweights, dl_dbiases
        """), "leaves out"),
    wrong("exp for sin", "q1.1", changed("q1.1", "np.sin(f0)", "np.exp(f0)"), "`h1`"),
    wrong("derivative of sin as -sin", "q1.2", changed("q1.2", "np.cos(f0)", "-np.sin(f0)"), "`dldf0`"),
    wrong("dldh1 without the upstream factor", "q1.2", changed("q1.2", "omega1 * dldf1", "omega1"), "`dldh1`"),
    wrong("bias derivative as its local derivative 1", "q1.3", changed("q1.3", "dldbeta1 = dldf1", "dldbeta1 = 1.0"),
          "`dldbeta1`", points=points_without("q1.3", "test_parameter_values", "test_parameters_biases")),
    wrong("global K, the lists sized from the arguments", "q2.2", _code("""
        def backward_pass(all_weights, all_biases, all_f, all_h, y):
            depth = len(all_weights)
            all_dl_dweights, all_dl_dbiases = [None] * depth, [None] * depth
            dl_df = d_loss_d_output(all_f[K], y)
            for layer in range(K, -1, -1):
                all_dl_dbiases[layer] = dl_df
                all_dl_dweights[layer] = dl_df @ all_h[layer].T
                if layer:
                    dl_df = indicator_function(all_f[layer - 1]) * (all_weights[layer].T @ dl_df)
            return all_dl_dweights, all_dl_dbiases
        """), "`backward_pass`", points=points_without("q2.2", "test_other_networks")),
]

# The answers of each named mistake, by their ids (question and name).
NAMED = {
    "ReLU on the output": ["q2.1 ReLU on the output", "q2.1 ReLU on the returned output",
                           "q2.1 the last activation returned as the output"],
    "missing or wrong ReLU indicator": ["q2.2 no ReLU derivative", "q2.2 ReLU derivative of the wrong layer",
                                        "q2.2 ReLU derivative as f >= 0", "q2.2 np.heaviside(f, 1)",
                                        "q2.2 no ReLU indicator, with np.dot"],
    "wrong function": ["q1.1 cos for sin", "q1.1 sin for cos", "q1.1 exp for sin", "q1.2 derivative of cos is cos",
                       "q1.2 derivative of sin as -sin"],
    "wrong sign": ["q1.2 given dldf3 with its sign flipped", "q1.2 derivative of cos without minus",
                   "q1.2 derivative of sin with a minus", "q2.2 sign of the loss derivative"],
    "missing upstream factor": ["q1.2 local derivative without the upstream factor",
                                "q1.2 dldh1 without the upstream factor",
                                "q1.3 weight derivative without the upstream factor",
                                "q1.3 bias derivative as its local derivative 1"],
    "global K": ["q2.1 global K", "q2.2 global K", "q2.2 global K, the lists sized from the arguments"],
}

ANSWERS: list[Answer] = WRONG + CORRECT
