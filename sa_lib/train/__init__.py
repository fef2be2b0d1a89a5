"""Training: the configuration of a run, its batches, the training step, validation and the resumable loop."""
