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

