"""Running a case: the implementation under test, its arrays and worker process, torch as oracle, the extra checks."""
