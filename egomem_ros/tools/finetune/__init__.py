"""Fine-tuning a moshi-family model to use its MemChunks (paper §4): data, masks, training."""
