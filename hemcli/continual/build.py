"""The strategy a ``hem continual`` run trains: the network (``hemcli.continual.model``), the optimiser
(``hemcli.engine.optim``, as every task builds it) and Avalanche's strategy of the recipe's name
(``hemcli.continual.strategies``) carrying hem's hooks (``hemcli.continual.hooks``): the loss rebuilt
from the class counts seen so far, the record a checkpoint carries, and the progress line.

Avalanche is imported inside the functions (``hemcli.continual.quiet.import_avalanche`` first).
"""
from __future__ import annotations

import torch

from hemcli.continual.measure import EVAL_BATCH


def build_strategy(cfg: dict, stream, dm, quiet: bool):
    """The model, optimiser and strategy with hem's hooks; returns (strategy, record)."""
    from hemcli.continual.hooks import CountedLoss, ProgressLine, Record
    from hemcli.continual.model import build_network
    from hemcli.continual.quiet import evaluator
    from hemcli.continual.strategies import STRATEGIES, strategy_params
    from hemcli.engine.optim import make_optimizer

    shape = tuple(stream.experiences[0].train_x.shape[1:])
    model = build_network(cfg["model"]["arch"], shape, stream.heads, stream.outputs, cfg["model"]["hidden"],
                          cfg["model"]["dropout"])
    record = Record(cfg)
    hooks = [CountedLoss(cfg["loss"]["name"], cfg["loss"]["params"], stream.outputs, dm.device), record,
             ProgressLine(record, len(stream.experiences), cfg["epochs"], quiet)]
    common = {"model": model, "optimizer": make_optimizer(cfg, model.parameters()),
              "criterion": torch.nn.CrossEntropyLoss(),  # replaced by CountedLoss before each experience
              "train_mb_size": cfg["batch_size"], "train_epochs": cfg["epochs"], "eval_mb_size": EVAL_BATCH,
              "device": dm.device, "plugins": hooks, "evaluator": evaluator(cfg["verbose"])}
    name = cfg["strategy"]["name"]
    return STRATEGIES[name].builder(common, strategy_params(name, cfg["strategy"]["params"])), record


def find_plugin(strategy, kind):
    """The strategy's plugin of class ``kind`` (hem's ``Record`` or ``CountedLoss``); None if it has none."""
    return next((plugin for plugin in strategy.plugins if isinstance(plugin, kind)), None)
