"""Tools built on the harness: fuzzing, benchmarks, the framework matrix and library coverage."""
