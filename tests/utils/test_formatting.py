from evdet.utils.formatting import number


def test_number_rounds_signs_and_marks_missing():
    assert number(0.123456) == "0.1235"
    assert number(0.5, signed=True) == "+0.5000" and number(-0.25, signed=True, digits=2) == "-0.25"
    assert number(None) == "-" and number(None, missing="–") == "–"
    assert number(2.0, digits=0) == "2"
