"""Where runs write and how: result paths, atomic writes, and one run per result path at a time.

``paths`` names a run's files and checks them without writing; ``files`` writes atomically;
``lock`` reserves a result path for one process. A training command uses them in this order:
every input check (``paths.check_output`` included) -> ``RunLock`` (creates folders, takes the
lock) -> train, checkpointing through ``files`` -> ``files.write_json_atomic`` -> release.
"""
