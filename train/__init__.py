"""Dual-head fine-tuning: LoRA causal LM + classification head on published dataset versions."""
