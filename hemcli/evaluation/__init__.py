"""What a trained classifier is measured on after training (the paper's Appendix B.1.2): clean
accuracy, corruption accuracy, unknown-class rejection, AutoAttack DAR and calibration.

``suite.evaluate`` runs the evaluations a recipe's ``eval`` names on a model and its data and returns
flat metrics (percentages, for ``hem report``), the details of each (which sets, corruptions and
settings were used) and the wall time of each. ``attack`` runs AutoAttack stage by stage, resumable per
batch. The formulas themselves are pure functions in ``hemcli.metrics``.
"""
