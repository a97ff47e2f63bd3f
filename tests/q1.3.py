from otter.test_files import test_case

OK_FORMAT = False

name = "q1.3"
points = 4

@test_case(points=1, hidden=False)
def test_parameters_table(env):
    import backprop_checks as check
    upstream = ['h1', 'h2', 'h3', 'dldf3', 'dldf2', 'dldf1', 'dldf0']
    answers = {f'{kind}{k}': env.get(f'{kind}{k}') for k in range(4) for kind in ('dldbeta', 'dldomega')}
    if not check.matches_table({name: env.get(name) for name in upstream}, answers, 'q1.1 and q1.2'):
        return
    for name, value in answers.items():
        check.check_scalar(name, value, check.TOY_TABLE[name], hidden=False, hint='Use the results of Step 3.')

@test_case(points=1, hidden=True)
def test_parameters_biases(dldf0, dldf1, dldf2, dldf3, dldbeta0, dldbeta1, dldbeta2, dldbeta3):
    import backprop_checks as check
    pairs = [(dldbeta0, dldf0), (dldbeta1, dldf1), (dldbeta2, dldf2), (dldbeta3, dldf3)]
    for k, (dldbeta, dldf) in enumerate(pairs):
        check.check_relation(f'dldbeta{k}', dldbeta, [check.scalar(f'dldf{k}', dldf)], f'beta{k} enters only f{k}, with a local derivative of 1.')

@test_case(points=2, hidden=True)
def test_parameters_weights(h1, h2, h3, dldf0, dldf1, dldf2, dldf3, dldomega0, dldomega1, dldomega2, dldomega3):
    import backprop_checks as check
    inputs = [2.3, check.scalar('h1', h1), check.scalar('h2', h2), check.scalar('h3', h3)]
    pairs = [(dldomega0, dldf0), (dldomega1, dldf1), (dldomega2, dldf2), (dldomega3, dldf3)]
    for k, (dldomega, dldf) in enumerate(pairs):
        check.check_relation(f'dldomega{k}', dldomega, [inputs[k] * check.scalar(f'dldf{k}', dldf)], f"omega{k} multiplies {('x' if k == 0 else f'h{k}')} in f{k}.")

