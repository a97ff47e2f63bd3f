from otter.test_files import test_case

OK_FORMAT = False

name = "q1.1"
points = 4

@test_case(points=1, hidden=False)
def test_forward_first_steps(f0, h1, f1, h2):
    import backprop_checks as check
    for name, value in dict(f0=f0, h1=h1, f1=f1, h2=h2).items():
        check.check_scalar(name, value, check.TOY_TABLE[name], hidden=False, hint='Compare with the equations of Step 1.')

@test_case(points=1, hidden=False)
def test_forward_last_steps(f2, h3, f3, l_i):
    import backprop_checks as check
    for name, value in dict(f2=f2, h3=h3, f3=f3, l_i=l_i).items():
        check.check_scalar(name, value, check.TOY_TABLE[name], hidden=False, hint='Compare with the equations of Step 1.')

@test_case(points=1, hidden=True)
def test_forward_each_step_follows(f0, h1, f1, h2, f2, h3, f3, l_i):
    import math
    import backprop_checks as check
    own = {name: check.scalar(name, value) for name, value in dict(f0=f0, h1=h1, f1=f1, h2=h2, f2=f2, h3=h3, f3=f3, l_i=l_i).items()}
    steps = [('f0', [1.0 + 0.1 * 2.3], 'f0 is beta0 + omega0 * x.'), ('h1', [math.sin(own['f0'])], 'h1 is the sine of f0.'), ('f1', [2.0 - 0.4 * own['h1']], 'f1 is beta1 + omega1 * h1.'), ('h2', [math.exp(own['f1'])], 'h2 is the exponential of f1.'), ('f2', [-3.0 + 2.0 * own['h2']], 'f2 is beta2 + omega2 * h2.'), ('h3', [math.cos(own['f2'])], 'h3 is the cosine of f2.'), ('f3', [0.4 + 3.0 * own['h3']], 'f3 is beta3 + omega3 * h3.'), ('l_i', [(own['f3'] - 2.0) ** 2], 'l_i is the squared difference of f3 and y.')]
    for name, candidates, hint in steps:
        check.check_relation(name, own[name], candidates, hint)

@test_case(points=1, hidden=True)
def test_forward_values_exact(f0, h1, f1, h2, f2, h3, f3, l_i):
    import backprop_checks as check
    reference = {'f0': 1.23, 'h1': 0.9424888019316975, 'f1': 1.623004479227321, 'h2': 5.068295051170775, 'f2': 7.13659010234155, 'h3': 0.6574213694719748, 'f3': 2.3722641084159246, 'l_i': 0.13858056641470326}
    for name, value in dict(f0=f0, h1=h1, f1=f1, h2=h2, f2=f2, h3=h3, f3=f3, l_i=l_i).items():
        check.check_scalar(name, value, reference[name], hidden=True, hint='Compute it, do not type it in.')

