"""Training: the loop (single process or torchrun/DDP) and resumable checkpoints."""
