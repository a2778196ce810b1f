"""`safeeraser bench`: our configurations against the reference's way, in one process and one run.

Sections: unlearning steps (gdpd, klpd), sampled inference, judging against a local OpenAI-compatible
server, and the share of a training step spent outside the model's forward and backward.
"""
