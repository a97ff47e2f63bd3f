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

@test_case(points=1, hidden=True)
def test_backward_output_end(f3, f2, dldf3, dldh3, dldf2):
    import math
    import backprop_checks as check
    own = {name: check.scalar(name, value) for name, value in dict(f3=f3, f2=f2, dldf3=dldf3, dldh3=dldh3, dldf2=dldf2).items()}
    check.check_relation('dldf3', own['dldf3'], [2 * (own['f3'] - 2.0)], 'dl/df3 is 2 (f3 - y).')
    check.check_relation('dldh3', own['dldh3'], [3.0 * own['dldf3']], 'dl/dh3 is omega3 times dl/df3.')
    check.check_relation('dldf2', own['dldf2'], [-math.sin(own['f2']) * own['dldh3']], 'h3 = cos(f2): check the derivative of cos, and its sign.')

@test_case(points=1, hidden=True)
def test_backward_middle(f1, h2, dldf2, dldh2, dldf1):
    import math
    import backprop_checks as check
    own = {name: check.scalar(name, value) for name, value in dict(f1=f1, h2=h2, dldf2=dldf2, dldh2=dldh2, dldf1=dldf1).items()}
    check.check_relation('dldh2', own['dldh2'], [2.0 * own['dldf2']], 'dl/dh2 is omega2 times dl/df2.')
    check.check_relation('dldf1', own['dldf1'], [math.exp(own['f1']) * own['dldh2'], own['h2'] * own['dldh2']], 'h2 = exp(f1): the derivative of exp is exp itself, at f1.')

@test_case(points=1, hidden=True)
def test_backward_input_end(f0, dldf1, dldh1, dldf0):
    import math
    import backprop_checks as check
    own = {name: check.scalar(name, value) for name, value in dict(f0=f0, dldf1=dldf1, dldh1=dldh1, dldf0=dldf0).items()}
    check.check_relation('dldh1', own['dldh1'], [-0.4 * own['dldf1']], 'dl/dh1 is omega1 times dl/df1.')
    check.check_relation('dldf0', own['dldf0'], [math.cos(own['f0']) * own['dldh1']], 'h1 = sin(f0): the derivative of sin is cos, at f0.')

