"""Data curation by feature: `generation`, `stats`, `review`, `publish`; `engines` is the public teacher API."""
