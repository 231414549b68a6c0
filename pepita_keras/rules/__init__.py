"""Learning rules, one module each."""
