"""hem: the high error margin loss and the evaluation of the paper that proposed it."""

__version__ = "0.1.0"
