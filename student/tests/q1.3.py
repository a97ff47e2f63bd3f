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

