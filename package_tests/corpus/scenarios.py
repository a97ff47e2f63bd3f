"""Whole notebooks that show no work, or change their answers after a check: the points each earns.

An answer earns a question's points only by work that is right: values that are zero, constant,
NaN, typed in (the table's included) or made to vanish, and functions that return zeros, their
inputs or None, earn nothing on that question, public checks included. A question is judged on the
notebook as it stood at its check, so a later cell changes nothing.
"""

from dataclasses import dataclass, field

from built import points, public_values

from .answers import BASELINE, GIVEN_Q12, TOY_PRINTED, Q11_NAMES, Q12_NAMES, Q13_NAMES, _code


@dataclass(frozen=True)
class Scenario:
    """A notebook: answer cells ({question: code}, the baseline elsewhere), cells added after checks
    ({question: code}), and the points each question must get."""

    name: str
    cells: dict[str, str]
    points: tuple[float, float, float, float, float]
    after: dict[str, str] = field(default_factory=dict)

    def answers(self) -> dict[str, str]:
        return {**BASELINE, **self.cells}


def constant(names: tuple[str, ...], value: str) -> str:
    return "".join(f"{name} = {value}\n" for name in names)


def typed(names: tuple[str, ...]) -> str:
    return "".join(f"{name} = {TOY_PRINTED[name]}\n" for name in names)


def returning(function: str, arguments: str, value: str) -> str:
    return f"def {function}({arguments}):\n    return {value}\n"


def looked_up() -> dict[str, str]:
    """Both functions as a lookup of the public tests' values: the notebook's network's answers
    when they recognise it, zeros for any other network."""
    forward, backward = public_values("q2.1"), public_values("q2.2")
    return {"q2.1": _code(f"""
        SEEN_F, SEEN_H = {forward["all_f"]!r}, {forward["all_h"]!r}
        SEEN_INPUT = np.array({forward["net_input"]!r})

        def seen(net_input):
            return np.shape(net_input) == SEEN_INPUT.shape and np.allclose(net_input, SEEN_INPUT)

        def compute_network_output(net_input, all_weights, all_biases):
            if seen(net_input):
                return np.array(SEEN_F[-1]), [np.array(f) for f in SEEN_F], [np.array(h) for h in SEEN_H]
            all_f = [np.zeros((w.shape[0], 1)) for w in all_weights]
            return all_f[-1], all_f, [net_input] + all_f[:-1]
        """), "q2.2": _code(f"""
        SEEN_W, SEEN_B = {backward["dl_dweights"]!r}, {backward["dl_dbiases"]!r}

        def backward_pass(all_weights, all_biases, all_f, all_h, y):
            if seen(all_h[0]):
                return [np.array(w) for w in SEEN_W], [np.array(b) for b in SEEN_B]
            return [np.zeros_like(w) for w in all_weights], [np.zeros_like(b) for b in all_biases]
        """)}


FORWARD_ARGUMENTS = "net_input, all_weights, all_biases"
BACKWARD_ARGUMENTS = "all_weights, all_biases, all_f, all_h, y"
ZERO_GRADIENTS = "[np.zeros_like(w) for w in all_weights], [np.zeros_like(b) for b in all_biases]"

SCENARIOS = [
    Scenario("everything zero", {
        "q1.1": constant(Q11_NAMES, "0.0"), "q1.2": constant(("dldf3", "dldh3") + Q12_NAMES, "0.0"),
        "q1.3": constant(Q13_NAMES, "0.0"),
        "q2.1": returning("compute_network_output", FORWARD_ARGUMENTS,
                          "np.zeros((all_weights[-1].shape[0], 1)), [np.zeros((w.shape[0], 1)) for w in all_weights], "
                          "[net_input] + [np.zeros((w.shape[0], 1)) for w in all_weights[:-1]]"),
        "q2.2": returning("backward_pass", BACKWARD_ARGUMENTS, ZERO_GRADIENTS)}, points("q1.1", "q1.2", "q1.3", "q2.1", "q2.2")),
    Scenario("everything one", {
        "q1.1": constant(Q11_NAMES, "1.0"), "q1.2": constant(("dldf3", "dldh3") + Q12_NAMES, "1.0"),
        "q1.3": constant(Q13_NAMES, "1.0")}, points("q1.1", "q1.2", "q1.3")),
    Scenario("everything NaN", {
        "q1.1": constant(Q11_NAMES, "float('nan')"), "q1.2": constant(("dldf3", "dldh3") + Q12_NAMES, "np.nan"),
        "q1.3": constant(Q13_NAMES, "np.nan")}, points("q1.1", "q1.2", "q1.3")),
    Scenario("the table typed in, and a backward pass of zeros", {
        "q1.1": typed(Q11_NAMES), "q1.2": typed(("dldf3", "dldh3") + Q12_NAMES),
        "q1.3": typed(Q13_NAMES), "q2.2": returning("backward_pass", BACKWARD_ARGUMENTS, ZERO_GRADIENTS)},
        points("q1.1", "q1.2", "q1.3", "q2.2")),
    Scenario("a chain made to vanish after a right forward pass", {
        "q1.2": "f3 = y\n" + GIVEN_Q12 + "dldf2 = -np.sin(f2) * dldh3\ndldh2 = omega2 * dldf2\n"
                "dldf1 = np.exp(f1) * dldh2\ndldh1 = omega1 * dldf1\ndldf0 = np.cos(f0) * dldh1\n",
        "q1.3": constant(Q13_NAMES, "0.0")}, points("q1.2", "q1.3")),
    Scenario("zeros in the cells after a right forward pass", {
        "q1.2": constant(("dldf3", "dldh3") + Q12_NAMES, "0.0"), "q1.3": constant(Q13_NAMES, "0.0")},
        points("q1.2", "q1.3"), after={"q1.1": "f3 = y\n"}),
    Scenario("a wrong forward pass, and the parameter derivatives all 1.0", {
        "q1.1": BASELINE["q1.1"].replace("np.sin(f0)", "np.cos(f0)"), "q1.3": constant(Q13_NAMES, "1.0")},
        points("q1.3", keep={"q1.1": ("test_forward_last_steps",)})),
    Scenario("functions that return their inputs", {
        "q2.1": returning("compute_network_output", FORWARD_ARGUMENTS, "net_input, all_weights, all_biases"),
        "q2.2": returning("backward_pass", BACKWARD_ARGUMENTS, "all_weights, all_biases")}, points("q2.1", "q2.2")),
    Scenario("functions that return None", {
        "q2.1": returning("compute_network_output", FORWARD_ARGUMENTS, "None"),
        "q2.2": returning("backward_pass", BACKWARD_ARGUMENTS, "None")}, points("q2.1", "q2.2")),
    Scenario("functions that return the set-up network's answers whatever the network", {
        "q2.1": BASELINE["q2.1"].replace(
            "def compute_network_output(", "def _forward(")
            + f"\n_answer = _forward(np.array({public_values('q2.1')['net_input']!r}), all_weights, all_biases)\n"
            + returning("compute_network_output", FORWARD_ARGUMENTS, "_answer")}, points("q2.1")),
    Scenario("a lookup of the public tests' values, zeros for other networks", looked_up(), points("q2.1", "q2.2")),
    Scenario("helper names kept in earlier answer cells (h0, activations, local derivatives)", {
        "q1.1": "h0 = x\n" + BASELINE["q1.1"].replace("omega0 * x", "omega0 * h0")
                + "activations = [h0, h1, h2, h3]\ndh1_df0, dh2_df1, dh3_df2 = np.cos(f0), h2, -np.sin(f2)\n",
        "q1.2": GIVEN_Q12 + "dldf2 = dh3_df2 * dldh3\ndldh2 = omega2 * dldf2\ndldf1 = dh2_df1 * dldh2\n"
                "dldh1 = omega1 * dldf1\ndldf0 = dh1_df0 * dldh1\n",
        "q1.3": _code("""
            dldbeta0, dldbeta1, dldbeta2, dldbeta3 = dldf0, dldf1, dldf2, dldf3
            dldomega0, dldomega1, dldomega2, dldomega3 = [a * d for a, d in zip(activations, [dldf0, dldf1, dldf2, dldf3])]
            """)}, points()),
    Scenario("a helper name kept in a wrong forward pass's cell", {
        "q1.1": "h0 = x\n" + BASELINE["q1.1"].replace("np.exp(f1)", "np.exp(-f1)"),
        "q1.3": BASELINE["q1.3"].replace("dldf0 * x", "dldf0 * h0")}, points(keep={"q1.1": ("test_forward_last_steps",)})),
    Scenario("q1.3 split: a globals() loop, then the betas by name in the answer cell", {
        "q1.3": "dldbeta0, dldbeta1, dldbeta2, dldbeta3 = dldf0, dldf1, dldf2, dldf3\n"}, points(), after={
        "q1.2": 'for k, h in enumerate([x, h1, h2, h3]):\n    globals()[f"dldomega{k}"] = h * globals()[f"dldf{k}"]\n'}),
    Scenario("a globals() loop, then a vars() debug print in the answer cell", {
        "q1.3": 'for name in ["dldbeta0", "dldomega0"]:\n    print(name, vars()[name])\n'}, points(), after={
        "q1.2": _code("""
            for k, h in enumerate([x, h1, h2, h3]):
                globals()[f"dldbeta{k}"] = globals()[f"dldf{k}"]
                globals()[f"dldomega{k}"] = h * globals()[f"dldf{k}"]
            """)}),
    Scenario("an older q1.2 cell with its helpers, above the fixed one", {
        "q1.2": GIVEN_Q12 + "dldf2 = dh3_df2 * dldh3\ndldh2 = omega2 * dldf2\ndldf1 = dh2_df1 * dldh2\n"
                "dldh1 = omega1 * dldf1\ndldf0 = dh1_df0 * dldh1\n"}, points(), after={
        "q1.1": GIVEN_Q12 + "dh3_df2, dh2_df1, dh1_df0 = -np.sin(f2), np.exp(f1), np.cos(f0)\n"
                "dldf2 = dh3_df2 * dldh3\ndldh2 = omega2 * dldf2\ndldf1 = dh2_df1 * dldh2\n"
                "dldh1 = omega1 * dldf1\ndldf0 = -dh1_df0 * dldh1\n"}),
    Scenario("right answers at every check, broken by cells after them", {}, points(), after={
        "q1.1": "f0 = h1 = f1 = h2 = f2 = h3 = f3 = l_i = 0.0\n",
        "q1.2": "dldf3 = dldh3 = dldf2 = dldh2 = dldf1 = dldh1 = dldf0 = 0.0\n",
        "q1.3": _code("""
            dldbeta0 = dldbeta1 = dldbeta2 = dldbeta3 = 1.0
            dldomega0 = dldomega1 = dldomega2 = dldomega3 = 1.0
            """),
        "q2.1": "def compute_network_output(net_input, all_weights, all_biases):\n    return None\n",
        "q2.2": "def backward_pass(all_weights, all_biases, all_f, all_h, y):\n    return None\n"}),
]
