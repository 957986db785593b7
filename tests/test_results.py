from hemcli.runs.record import build_result, git_commit

CFG = {"task": "classify", "dataset": {"name": "digits"}, "model": {"arch": "lenet"},
       "loss": {"name": "hem-"}, "seed": 3}


def test_result_record():
    result = build_result(CFG, {"clean_accuracy": 90.0}, [], {"device": "cpu"}, {"total_seconds": 1.0})
    assert result["schema_version"] == 1 and result["status"] == "complete"
    assert result["recipe"] is CFG and "run" not in result  # named by whoever writes it
    assert set(git_commit()) == {"commit", "dirty"}
