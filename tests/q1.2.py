from otter.test_files import test_case

OK_FORMAT = False

name = "q1.2"
points = 4

@test_case(points=1, hidden=False)
def test_backward_values(env):
    """The seven derivatives, from your cell run with the exact forward values of two sets of parameters."""
    import backprop_checks as check
    points = check.public_points({'notebook': {'beta0': 1.0, 'beta1': 2.0, 'beta2': -3.0, 'beta3': 0.4, 'omega0': 0.1, 'omega1': -0.4, 'omega2': 2.0, 'omega3': 3.0, 'x': 2.3, 'y': 2.0, 'f0': 1.23, 'h1': 0.9424888019316975, 'f1': 1.623004479227321, 'h2': 5.068295051170775, 'f2': 7.13659010234155, 'h3': 0.6574213694719748, 'f3': 2.3722641084159246, 'l_i': 0.13858056641470326, 'dldf3': 0.7445282168318492, 'dldh3': 2.2335846504955477, 'dldf2': -1.6830577496003047, 'dldh2': -3.3661154992006095, 'dldf1': -17.060466526267692, 'dldh1': 6.824186610507077, 'dldf0': 2.280900622169349, 'dldbeta0': 2.280900622169349, 'dldomega0': 5.246071430989502, 'dldbeta1': -17.060466526267692, 'dldomega1': -16.079298656737866, 'dldbeta2': -1.6830577496003047, 'dldomega2': -8.530233263133846, 'dldbeta3': 0.7445282168318492, 'dldomega3': 0.48946875992012173}, 'other': {'beta0': 0.5, 'beta1': 1.5, 'beta2': -2.0, 'beta3': 0.2, 'omega0': 0.3, 'omega1': -0.6, 'omega2': 1.5, 'omega3': 2.5, 'x': 1.7, 'y': 1.0, 'f0': 1.01, 'h1': 0.8468318446180152, 'f1': 0.991900893229191, 'h2': 2.696355087064937, 'f2': 2.0445326305974056, 'h3': -0.4562142864790319, 'f3': -0.9405357161975798, 'l_i': 3.765678865838454, 'dldf3': -3.8810714323951596, 'dldh3': -9.702678580987898, 'dldf2': 8.634122086826245, 'dldh2': 12.951183130239368, 'dldf1': 34.92098851673052, 'dldh1': -20.95259311003831, 'dldf0': -11.143861286168326, 'dldbeta0': -11.143861286168326, 'dldomega0': -18.944564186486154, 'dldbeta1': 34.92098851673052, 'dldomega1': 29.57220512150743, 'dldbeta2': 8.634122086826245, 'dldomega2': 23.280659011153677, 'dldbeta3': -3.8810714323951596, 'dldomega3': 1.770600234304312}})
    check.check_toy_question(env, 'q1.2', check.BACKWARD, points, hidden=False, hint='Multiply the derivative after it by one local derivative.')

@test_case(points=1, hidden=True)
def test_backward_output_end(env):
    """dldf3, dldh3 and dldf2 follow by the chain rule, with other values."""
    import math
    import backprop_checks as check
    import backprop_reference as reference
    points = check.hidden_points(reference.hidden_toy_points(env, 'q1.2'))
    steps = [('dldf3', lambda v: [2 * (v['f3'] - v['y'])], 'dl/df3 is 2 (f3 - y).'), ('dldh3', lambda v: [v['omega3'] * v['dldf3']], 'dl/dh3 is omega3 times dl/df3.'), ('dldf2', lambda v: [-math.sin(v['f2']) * v['dldh3']], 'dl/df2 is the derivative of cos at f2 (h3 = cos(f2)) times dl/dh3.')]
    check.check_toy_steps(env, 'q1.2', steps, points, hidden=True, subject='dl/df3, dl/dh3 and dl/df2', hint='dl/df3 = 2 (f3 - y), dl/dh3 = omega3 dl/df3, and dl/df2 is the derivative of cos at f2 (h3 = cos(f2)) times dl/dh3.')

@test_case(points=1, hidden=True)
def test_backward_middle(env):
    """dldh2 and dldf1 follow by the chain rule, with other values."""
    import math
    import backprop_checks as check
    import backprop_reference as reference
    points = check.hidden_points(reference.hidden_toy_points(env, 'q1.2'))
    steps = [('dldh2', lambda v: [v['omega2'] * v['dldf2']], 'dl/dh2 is omega2 times dl/df2.'), ('dldf1', lambda v: [math.exp(v['f1']) * v['dldh2'], v['h2'] * v['dldh2']], 'h2 = exp(f1): the derivative of exp is exp itself, at f1.')]
    check.check_toy_steps(env, 'q1.2', steps, points, hidden=True, subject='dl/dh2 and dl/df1', hint='dl/dh2 = omega2 dl/df2; h2 = exp(f1): the derivative of exp is exp itself, at f1.')

@test_case(points=1, hidden=True)
def test_backward_input_end(env):
    """dldh1 and dldf0 follow by the chain rule, with other values."""
    import math
    import backprop_checks as check
    import backprop_reference as reference
    points = check.hidden_points(reference.hidden_toy_points(env, 'q1.2'))
    steps = [('dldh1', lambda v: [v['omega1'] * v['dldf1']], 'dl/dh1 is omega1 times dl/df1.'), ('dldf0', lambda v: [math.cos(v['f0']) * v['dldh1']], 'h1 = sin(f0): the derivative of sin is cos, at f0.')]
    check.check_toy_steps(env, 'q1.2', steps, points, hidden=True, subject='dl/dh1 and dl/df0', hint='dl/dh1 = omega1 dl/df1; h1 = sin(f0): the derivative of sin is cos, at f0.')

