"""Runs: what one is, where it writes, and many of them.

``condition`` says what a run is (its condition and id; ``same_run`` for a checkpoint); ``spec`` plans
one run from a recipe and flags (its result path, its command line); ``paths`` names a run's files
and checks them without writing; ``lock`` reserves a result path for one process; ``execute`` trains
one planned run and writes its result (``record`` says what the result holds); ``sweep`` plans a
grid of runs and hands them to a backend (local workers, Ray, Slurm). A training command goes:
every input check (``paths.check_output`` included) -> ``RunLock`` (creates folders, takes the lock)
-> the task's ``run`` (``hemcli.engine.loop.fit``, checkpointing atomically through
``hemcli.fileio``) -> ``fileio.write_json_atomic`` -> release.
"""
