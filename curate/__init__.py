"""Data curation by feature: `generation`, `stats`, `review`, `publish`; `engines` is the public teacher API."""

import os

# polars' jemalloc keeps freed pages for up to a second (polars' own default, which a parent process that imported
# polars passes down); returning them at once keeps planning's peak RSS near its working set (200k rows: 0.99x the
# input file instead of 1.47x). jemalloc reads this once, so it is set before polars loads.
os.environ["_RJEM_MALLOC_CONF"] = "dirty_decay_ms:0,muzzy_decay_ms:0"
