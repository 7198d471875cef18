"""Evaluation: dual-output inference, metrics, threshold and checkpoint selection, judge, baselines, reports."""
