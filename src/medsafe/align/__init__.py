"""Alignment: SFT/DPO/KTO data from runs, LoRA training with TRL, paired before/after verdicts."""
