"""Multi-step jobs built from the package's pieces: the vanilla step, the end-to-end demo."""
