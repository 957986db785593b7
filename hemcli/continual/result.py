"""The result record of a ``hem continual`` run: ``hemcli.runs.record.build_result`` (the recipe,
metrics, epoch history, environment, timings) and ``result["continual"]``: the accuracy matrix (row
i: after training experience i, one column per experience, ``None`` where its head does not exist
yet), the test and training sizes, the classes of each experience, the class order and the class
counts the loss saw last. The metrics are ``hemcli.continual.measure.matrix_metrics``'.
"""
from __future__ import annotations

import time


def result_record(cfg: dict, stream, strategy, record, dm, began: float) -> dict:
    """The record of the run ``cfg`` that trained ``strategy`` on ``stream`` from ``began``
    (``time.perf_counter()``), its measurements in hem's ``record`` hook."""
    import avalanche

    from hemcli.continual.build import find_plugin
    from hemcli.continual.hooks import CountedLoss
    from hemcli.continual.measure import matrix_metrics
    from hemcli.models import count_parameters
    from hemcli.runs.record import build_result, environment

    matrix, sizes = record.matrix, [len(e.test_y) for e in stream.experiences]
    env = {**environment(dm.describe()), "avalanche": avalanche.__version__,
           "parameters": count_parameters(strategy.model)}
    timings = {"total_seconds": time.perf_counter() - began, "train_seconds": sum(record.seconds),
               "experience_seconds": record.seconds}
    detail = {"scenario": stream.scenario, "heads": stream.heads, "outputs_per_head": stream.outputs,
              "accuracy_matrix": matrix, "test_sizes": sizes,
              "train_sizes": [len(e.train_y) for e in stream.experiences],
              "classes": [e.classes for e in stream.experiences], "class_order": stream.order,
              "class_counts_seen": find_plugin(strategy, CountedLoss).seen.tolist()}
    return {**build_result(cfg, matrix_metrics(matrix, sizes), record.history, env, timings), "continual": detail}
