"""Data curation: teacher engines, K-trial acceptance, journal, stats, review and publishing."""
