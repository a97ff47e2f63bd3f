from otter.test_files import test_case

OK_FORMAT = False

name = "q1.2"
points = 4

@test_case(points=1, hidden=False)
def test_backward_table(f0, h1, f1, h2, f2, h3, f3, dldf3, dldh3, dldf2, dldh2, dldf1, dldh1, dldf0):
    import backprop_checks as check
    values = dict(dldf3=dldf3, dldh3=dldh3, dldf2=dldf2, dldh2=dldh2, dldf1=dldf1, dldh1=dldh1, dldf0=dldf0)
    if not check.matches_table(dict(f0=f0, h1=h1, f1=f1, h2=h2, f2=f2, h3=h3, f3=f3), values, 'q1.1'):
        return
    for name, value in values.items():
        check.check_scalar(name, value, check.TOY_TABLE[name], hidden=False, hint='Multiply the derivative after it by one local derivative.')

