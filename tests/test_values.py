"""hemcli.values: text becomes values as a person means them (YAML 1.2 core scalars), once."""
import math

import pytest

from hemcli.errors import HemError
from hemcli.values import check_float, check_int, check_plain, read_value, read_yaml_file


@pytest.mark.parametrize("text, value", [
    ("1e-3", 0.001), ("1E-3", 0.001), ("1e3", 1000.0), ("2.5e+2", 250.0), ("-.5", -0.5), ("1.", 1.0),
    ("010", 10), ("+07", 7), ("-3", -3), ("0x1f", 31), ("0o17", 15), ("0", 0),
    ("true", True), ("False", False), ("null", None), ("~", None), ("", None),
    ("1:30", "1:30"), ("yes", "yes"), ("off", "off"), ("2024-01-01", "2024-01-01"), ("0b101", "0b101"),
    ("1_000", "1_000"), ("nan", "nan"), ("[100, 105]", [100, 105]), ("{M: 1e3}", {"M": 1000.0}),
])
def test_numbers_read_as_a_person_means_them(text, value):
    read = read_value(text)
    assert read == value and type(read) is type(value)


@pytest.mark.parametrize("text, check", [(".nan", math.isnan), (".inf", lambda v: v == math.inf),
                                         ("-.Inf", lambda v: v == -math.inf), ("1e400", lambda v: v == math.inf)])
def test_non_finite_values_are_read_and_left_to_the_checks(text, check):
    assert check(read_value(text))


@pytest.mark.parametrize("text", ["[1", "{a: 1, a: 2}", "9" * 5000, "a: b: c"])
def test_unreadable_values(text):
    with pytest.raises(HemError, match="cannot read value"):
        read_value(text)


def test_duplicate_key_in_a_file_names_key_and_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("epochs: 3\noptim:\n  lr: 0.1\nepochs: 5\n")
    with pytest.raises(HemError) as err:
        read_yaml_file(path)
    assert str(err.value) == f"malformed YAML in {path} at line 4: duplicate key 'epochs'"


def test_merge_keys_may_be_overridden(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("base: &b {lr: 0.1, momentum: 0.9}\noptim:\n  <<: *b\n  lr: 0.5\n")
    assert read_yaml_file(path)["optim"] == {"lr": 0.5, "momentum": 0.9}


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe\x00garbage", "is not UTF-8 text"),
    (b"{a: " * 20000 + b"1" + b"}" * 20000, "nested too deeply"),
    (b"[" * 20000 + b"]" * 20000, "nested too deeply"),
    (b"x: " + b"y" * (1 << 20), "larger than 1 MiB"),
])
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "r.yaml"
    path.write_bytes(content)
    with pytest.raises(HemError, match=message):
        read_yaml_file(path)


def test_a_folder_or_nothing_is_not_a_recipe(tmp_path):
    with pytest.raises(HemError, match=f"recipe {tmp_path} is not a file"):
        read_yaml_file(tmp_path)
    with pytest.raises(HemError, match="recipe file not found"):
        read_yaml_file(tmp_path / "nope.yaml")


def test_int_range_defaults_to_int64():
    assert check_int("k", 2 ** 63 - 1) == 2 ** 63 - 1
    with pytest.raises(HemError, match="'k' must be <= 9223372036854775807, got 9223372036854775808"):
        check_int("k", 2 ** 63)
    with pytest.raises(HemError, match="'k' must be >= 1, got 0"):
        check_int("k", 0, minimum=1)


@pytest.mark.parametrize("value, message", [
    (math.nan, "must be a finite number, got nan"), (math.inf, "must be a finite number, got inf"),
    (10 ** 400, "out of range for a number, got 100000000000000000000000... (401 characters)"),
    (-1.0, "must be >= 0, got -1.0"),
], ids=["nan", "inf", "10**400", "negative"])
def test_float_checks(value, message):
    with pytest.raises(HemError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_float("k", value, minimum=0)


def test_free_form_values_are_walked():
    assert check_plain("p", {"M": 1000, "x": [1.5, "a", None, True]}) == {"M": 1000, "x": [1.5, "a", None, True]}
    with pytest.raises(HemError, match=r"'p.x\[1\]' must be a finite number"):
        check_plain("p", {"x": [1.0, math.nan]})
    with pytest.raises(HemError, match="'p.M' must be <= 9223372036854775807"):
        check_plain("p", {"M": 10 ** 400})


def test_aliases_count_against_the_node_budget_without_being_expanded():
    """Counted by hand: the mapping, its two keys, [x, y] (3 nodes) and [*a, *a] (1 + 2 * 3 nodes)."""
    import yaml

    from hemcli.values import MAX_YAML_NODES, HemLoader, expanded_size

    assert expanded_size(yaml.compose("a: &a [x, y]\nb: [*a, *a]\n", Loader=HemLoader)) == 1 + 2 + 3 + 7
    assert read_value("{a: &a [x, y], b: [*a, *a]}") == {"a": ["x", "y"], "b": [["x", "y"], ["x", "y"]]}
    # 9 levels of nine aliases: 9 ** 9 strings, in one line of about 400 characters
    levels = [f"l0: &l0 [{', '.join(['x'] * 9)}]"] + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]"
                                                    for i in range(1, 9)]
    with pytest.raises(HemError, match=f"aliases expand to more than {MAX_YAML_NODES} values"):
        read_value("{" + ", ".join(levels) + "}")
    with pytest.raises(HemError, match="an alias refers to the mapping or list it is in"):
        read_value("&a [1, *a]")


def test_a_fifo_is_not_read_as_a_recipe(tmp_path):
    import os

    os.mkfifo(tmp_path / "r.yaml")
    with pytest.raises(HemError, match="is not a file"):
        read_yaml_file(tmp_path / "r.yaml")
