"""Drop statistics of a run (the paper's Table 7, failure reasons, acceptance by trial) and their rendering."""
