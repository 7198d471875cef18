"""Teacher generation with K-trial acceptance (Algorithm 1), the run directory and its journal-derived tables."""
