"""Multi-step jobs built from the package's pieces: the vanilla step, the experiment grid and its report."""
