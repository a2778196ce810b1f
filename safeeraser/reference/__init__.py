"""What reference mode reads from a user's checkout of the SafeEraser repository (never shipped here)."""
