"""Judging a result: the vocabulary of verdicts, numerical comparison, the error-bound tolerance, xfail lists."""
