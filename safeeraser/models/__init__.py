"""Model building and loading: the tiny LLaVA builder and the loader every command shares."""
