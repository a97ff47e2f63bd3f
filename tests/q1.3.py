from otter.test_files import test_case

OK_FORMAT = False

name = "q1.3"
points = 4

@test_case(points=1, hidden=False)
def test_parameter_values(env):
    """The eight parameter derivatives, from your cell run with the exact values of two sets of parameters."""
    import backprop_checks as check
    points = check.public_points({'notebook': {'beta0': 1.0, 'beta1': 2.0, 'beta2': -3.0, 'beta3': 0.4, 'omega0': 0.1, 'omega1': -0.4, 'omega2': 2.0, 'omega3': 3.0, 'x': 2.3, 'y': 2.0, 'f0': 1.23, 'h1': 0.9424888019316975, 'f1': 1.623004479227321, 'h2': 5.068295051170775, 'f2': 7.13659010234155, 'h3': 0.6574213694719748, 'f3': 2.3722641084159246, 'l_i': 0.13858056641470326, 'dldf3': 0.7445282168318492, 'dldh3': 2.2335846504955477, 'dldf2': -1.6830577496003047, 'dldh2': -3.3661154992006095, 'dldf1': -17.060466526267692, 'dldh1': 6.824186610507077, 'dldf0': 2.280900622169349, 'dldbeta0': 2.280900622169349, 'dldomega0': 5.246071430989502, 'dldbeta1': -17.060466526267692, 'dldomega1': -16.079298656737866, 'dldbeta2': -1.6830577496003047, 'dldomega2': -8.530233263133846, 'dldbeta3': 0.7445282168318492, 'dldomega3': 0.48946875992012173}, 'other': {'beta0': 0.5, 'beta1': 1.5, 'beta2': -2.0, 'beta3': 0.2, 'omega0': 0.3, 'omega1': -0.6, 'omega2': 1.5, 'omega3': 2.5, 'x': 1.7, 'y': 1.0, 'f0': 1.01, 'h1': 0.8468318446180152, 'f1': 0.991900893229191, 'h2': 2.696355087064937, 'f2': 2.0445326305974056, 'h3': -0.4562142864790319, 'f3': -0.9405357161975798, 'l_i': 3.765678865838454, 'dldf3': -3.8810714323951596, 'dldh3': -9.702678580987898, 'dldf2': 8.634122086826245, 'dldh2': 12.951183130239368, 'dldf1': 34.92098851673052, 'dldh1': -20.95259311003831, 'dldf0': -11.143861286168326, 'dldbeta0': -11.143861286168326, 'dldomega0': -18.944564186486154, 'dldbeta1': 34.92098851673052, 'dldomega1': 29.57220512150743, 'dldbeta2': 8.634122086826245, 'dldomega2': 23.280659011153677, 'dldbeta3': -3.8810714323951596, 'dldomega3': 1.770600234304312}})
    check.check_toy_question(env, 'q1.3', check.PARAMETER_DERIVATIVES, points, hidden=False, hint='Use the results of Step 3.')

@test_case(points=1, hidden=True)
def test_parameters_biases(env):
    """The four bias derivatives follow from the backward pass, with other values."""
    import backprop_checks as check
    import backprop_reference as reference
    points = check.hidden_points(reference.hidden_toy_points(env, 'q1.3'))
    steps = [(f'dldbeta{k}', lambda v, k=k: [v[f'dldf{k}']], f'beta{k} enters only f{k}, with a local derivative of 1.') for k in (3, 2, 1, 0)]
    check.check_toy_steps(env, 'q1.3', steps, points, hidden=True, subject='The bias derivatives dl/dbeta3 to dl/dbeta0', hint='beta_k enters only f_k, with a local derivative of 1: dl/dbeta_k = dl/df_k.')

@test_case(points=2, hidden=True)
def test_parameters_weights(env):
    """The four weight derivatives follow from the backward pass and the forward values, with other values."""
    import backprop_checks as check
    import backprop_reference as reference
    points = check.hidden_points(reference.hidden_toy_points(env, 'q1.3'))
    inputs = ['x', 'h1', 'h2', 'h3']
    steps = [(f'dldomega{k}', lambda v, k=k: [v[inputs[k]] * v[f'dldf{k}']], f'omega{k} multiplies {inputs[k]} in f{k}.') for k in (3, 2, 1, 0)]
    check.check_toy_steps(env, 'q1.3', steps, points, hidden=True, subject='The weight derivatives dl/domega3 to dl/domega0', hint='omega_k multiplies h_k in f_k (h_0 is x): dl/domega_k = h_k dl/df_k.')

