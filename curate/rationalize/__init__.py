"""`curate rationalize`: the teacher explains the gold label of discarded examples, given it as a hint."""
