"""Unlearning and fine-tuning: config, loss methods, the training loop."""
