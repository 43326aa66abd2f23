"""The case format: the model of a case, YAML loading, sweeps, tensor specs and the bundled library."""
