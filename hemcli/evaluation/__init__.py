"""What a trained classifier is measured on after training (the paper's Appendix B.1.2): clean
accuracy, corruption accuracy, unknown-class rejection, AutoAttack DAR and calibration.

``suite.evaluate`` runs the evaluations a recipe's ``eval`` names on a model and its data and returns
flat metrics (percentages, for ``hem report``), the details of each (which sets, corruptions and
settings were used) and the wall time of each. ``attack`` runs AutoAttack stage by stage, resumable per
batch. The formulas themselves are pure functions in ``hemcli.metrics``.

``evaluate(model, dataset, evals)`` (``external``) measures any ``nn.Module`` with the same suite
and settings, for a network trained elsewhere; ``weights`` loads a state_dict into a network,
checking that it fits, for ``hem evaluate --weights``.
"""
from hemcli.evaluation.external import evaluate

__all__ = ["evaluate"]
