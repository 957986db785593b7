"""Continual-learning metrics against values worked out by hand."""
import pytest

from hemcli.metrics.forgetting import average_forgetting, backward_transfer, final_accuracy

# rows: after training experience 0, 1, 2; columns: experience 0, 1, 2 (None: no head yet)
MATRIX = [[60.0, None, None],
          [90.0, 80.0, None],
          [70.0, 50.0, 100.0]]


def test_final_accuracy_is_the_last_row_weighted_by_test_size():
    # (70 * 100 + 50 * 300 + 100 * 100) / 500 = 64
    assert final_accuracy(MATRIX, [100, 300, 100]) == pytest.approx(64.0)


def test_average_forgetting_takes_the_best_earlier_accuracy():
    # experience 0: best of 60, 90 (it rose after experience 1) -> 90 - 70 = 20; experience 1: 80 - 50 = 30
    assert average_forgetting(MATRIX) == pytest.approx(25.0)


def test_backward_transfer_compares_with_the_accuracy_right_after_training():
    # (70 - 60 + 50 - 80) / 2 = -10
    assert backward_transfer(MATRIX) == pytest.approx(-10.0)


def test_one_experience_has_no_forgetting():
    assert average_forgetting([[80.0]]) is None and backward_transfer([[80.0]]) is None
    assert final_accuracy([[80.0]], [5]) == 80.0


def test_a_matrix_that_is_not_square_is_refused():
    with pytest.raises(ValueError):
        final_accuracy([[1.0, 2.0]], [1, 1])
