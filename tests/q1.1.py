from otter.test_files import test_case

OK_FORMAT = False

name = "q1.1"
points = 4

@test_case(points=1, hidden=False)
def test_forward_first_steps(env):
    """f0, h1, f1 and h2, from your cell run with the notebook's parameters and with another set."""
    import backprop_checks as check
    points = check.public_points({'notebook': {'beta0': 1.0, 'beta1': 2.0, 'beta2': -3.0, 'beta3': 0.4, 'omega0': 0.1, 'omega1': -0.4, 'omega2': 2.0, 'omega3': 3.0, 'x': 2.3, 'y': 2.0, 'f0': 1.23, 'h1': 0.9424888019316975, 'f1': 1.623004479227321, 'h2': 5.068295051170775, 'f2': 7.13659010234155, 'h3': 0.6574213694719748, 'f3': 2.3722641084159246, 'l_i': 0.13858056641470326, 'dldf3': 0.7445282168318492, 'dldh3': 2.2335846504955477, 'dldf2': -1.6830577496003047, 'dldh2': -3.3661154992006095, 'dldf1': -17.060466526267692, 'dldh1': 6.824186610507077, 'dldf0': 2.280900622169349, 'dldbeta0': 2.280900622169349, 'dldomega0': 5.246071430989502, 'dldbeta1': -17.060466526267692, 'dldomega1': -16.079298656737866, 'dldbeta2': -1.6830577496003047, 'dldomega2': -8.530233263133846, 'dldbeta3': 0.7445282168318492, 'dldomega3': 0.48946875992012173}, 'other': {'beta0': 0.5, 'beta1': 1.5, 'beta2': -2.0, 'beta3': 0.2, 'omega0': 0.3, 'omega1': -0.6, 'omega2': 1.5, 'omega3': 2.5, 'x': 1.7, 'y': 1.0, 'f0': 1.01, 'h1': 0.8468318446180152, 'f1': 0.991900893229191, 'h2': 2.696355087064937, 'f2': 2.0445326305974056, 'h3': -0.4562142864790319, 'f3': -0.9405357161975798, 'l_i': 3.765678865838454, 'dldf3': -3.8810714323951596, 'dldh3': -9.702678580987898, 'dldf2': 8.634122086826245, 'dldh2': 12.951183130239368, 'dldf1': 34.92098851673052, 'dldh1': -20.95259311003831, 'dldf0': -11.143861286168326, 'dldbeta0': -11.143861286168326, 'dldomega0': -18.944564186486154, 'dldbeta1': 34.92098851673052, 'dldomega1': 29.57220512150743, 'dldbeta2': 8.634122086826245, 'dldomega2': 23.280659011153677, 'dldbeta3': -3.8810714323951596, 'dldomega3': 1.770600234304312}})
    check.check_toy_question(env, 'q1.1', ['f0', 'h1', 'f1', 'h2'], points, hidden=False, hint='Compare with the equations of Step 1.')

@test_case(points=1, hidden=False)
def test_forward_last_steps(env):
    """f2, h3, f3 and l_i each follow from the value before them (with both sets of parameters)."""
    import math
    import backprop_checks as check
    points = check.public_points({'notebook': {'beta0': 1.0, 'beta1': 2.0, 'beta2': -3.0, 'beta3': 0.4, 'omega0': 0.1, 'omega1': -0.4, 'omega2': 2.0, 'omega3': 3.0, 'x': 2.3, 'y': 2.0, 'f0': 1.23, 'h1': 0.9424888019316975, 'f1': 1.623004479227321, 'h2': 5.068295051170775, 'f2': 7.13659010234155, 'h3': 0.6574213694719748, 'f3': 2.3722641084159246, 'l_i': 0.13858056641470326, 'dldf3': 0.7445282168318492, 'dldh3': 2.2335846504955477, 'dldf2': -1.6830577496003047, 'dldh2': -3.3661154992006095, 'dldf1': -17.060466526267692, 'dldh1': 6.824186610507077, 'dldf0': 2.280900622169349, 'dldbeta0': 2.280900622169349, 'dldomega0': 5.246071430989502, 'dldbeta1': -17.060466526267692, 'dldomega1': -16.079298656737866, 'dldbeta2': -1.6830577496003047, 'dldomega2': -8.530233263133846, 'dldbeta3': 0.7445282168318492, 'dldomega3': 0.48946875992012173}, 'other': {'beta0': 0.5, 'beta1': 1.5, 'beta2': -2.0, 'beta3': 0.2, 'omega0': 0.3, 'omega1': -0.6, 'omega2': 1.5, 'omega3': 2.5, 'x': 1.7, 'y': 1.0, 'f0': 1.01, 'h1': 0.8468318446180152, 'f1': 0.991900893229191, 'h2': 2.696355087064937, 'f2': 2.0445326305974056, 'h3': -0.4562142864790319, 'f3': -0.9405357161975798, 'l_i': 3.765678865838454, 'dldf3': -3.8810714323951596, 'dldh3': -9.702678580987898, 'dldf2': 8.634122086826245, 'dldh2': 12.951183130239368, 'dldf1': 34.92098851673052, 'dldh1': -20.95259311003831, 'dldf0': -11.143861286168326, 'dldbeta0': -11.143861286168326, 'dldomega0': -18.944564186486154, 'dldbeta1': 34.92098851673052, 'dldomega1': 29.57220512150743, 'dldbeta2': 8.634122086826245, 'dldomega2': 23.280659011153677, 'dldbeta3': -3.8810714323951596, 'dldomega3': 1.770600234304312}})
    steps = [('f0', lambda v: [v['beta0'] + v['omega0'] * v['x']], 'f0 is beta0 + omega0 * x.'), ('h1', lambda v: [math.sin(v['f0'])], 'h1 is the sine of f0.'), ('f1', lambda v: [v['beta1'] + v['omega1'] * v['h1']], 'f1 is beta1 + omega1 * h1.'), ('h2', lambda v: [math.exp(v['f1'])], 'h2 is the exponential of f1.'), ('f2', lambda v: [v['beta2'] + v['omega2'] * v['h2']], 'f2 is beta2 + omega2 * h2.'), ('h3', lambda v: [math.cos(v['f2'])], 'h3 is the cosine of f2.'), ('f3', lambda v: [v['beta3'] + v['omega3'] * v['h3']], 'f3 is beta3 + omega3 * h3.'), ('l_i', lambda v: [(v['f3'] - v['y']) ** 2], 'l_i is the squared difference of f3 and y.')][4:]
    check.check_toy_steps(env, 'q1.1', steps, points, hidden=False)

@test_case(points=1, hidden=True)
def test_forward_every_step_follows(env):
    """Every step of the forward pass follows from the one before it, with other parameter values."""
    import math
    import backprop_checks as check
    import backprop_reference as reference
    points = check.hidden_points(reference.hidden_toy_points(env, 'q1.1'))
    steps = [('f0', lambda v: [v['beta0'] + v['omega0'] * v['x']], 'f0 is beta0 + omega0 * x.'), ('h1', lambda v: [math.sin(v['f0'])], 'h1 is the sine of f0.'), ('f1', lambda v: [v['beta1'] + v['omega1'] * v['h1']], 'f1 is beta1 + omega1 * h1.'), ('h2', lambda v: [math.exp(v['f1'])], 'h2 is the exponential of f1.'), ('f2', lambda v: [v['beta2'] + v['omega2'] * v['h2']], 'f2 is beta2 + omega2 * h2.'), ('h3', lambda v: [math.cos(v['f2'])], 'h3 is the cosine of f2.'), ('f3', lambda v: [v['beta3'] + v['omega3'] * v['h3']], 'f3 is beta3 + omega3 * h3.'), ('l_i', lambda v: [(v['f3'] - v['y']) ** 2], 'l_i is the squared difference of f3 and y.')]
    check.check_toy_steps(env, 'q1.1', steps, points, hidden=True, subject='The steps of the forward pass', hint='Each is one equation of Step 1: f0 = beta0 + omega0 x, h1 = sin(f0), f1 = beta1 + omega1 h1, h2 = exp(f1), f2 = beta2 + omega2 h2, h3 = cos(f2), f3 = beta3 + omega3 h3, l_i = (f3 - y)^2.')

@test_case(points=1, hidden=True)
def test_forward_exact(env):
    """The forward pass is exact (not rounded, not typed in) with other parameter values."""
    import backprop_checks as check
    import backprop_reference as reference
    points = check.hidden_points(reference.hidden_toy_points(env, 'q1.1'))
    check.check_toy_question(env, 'q1.1', check.FORWARD, points, hidden=True, subject='The forward pass', hint='Compute every value from the ones before it, by the equations of Step 1.')

