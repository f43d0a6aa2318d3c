"""One training run: session, objective, adaptors, optimizer, checkpoints, ranks."""
