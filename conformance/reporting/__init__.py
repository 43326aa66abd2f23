"""Writing verdicts down: the terminal, JSON helpers, JUnit XML, the HTML page and repro scripts."""
