"""Model building and loading: the model families, the tiny builders and the loader every command shares."""
