"""Run-wise cross-validation splits."""


def leave_one_run_out(run_ids):
    """Yield ``(train_runs, test_run)`` for each run.

    Parameters
    ----------
    run_ids : sequence
        Identifiers of the runs (indices into the list of runs).
    """
    run_ids = list(run_ids)
    for test in run_ids:
        yield [run for run in run_ids if run != test], test
