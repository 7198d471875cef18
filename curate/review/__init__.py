"""Human review of discarded examples in Argilla 2.x: push a queue, pull submitted decisions."""
