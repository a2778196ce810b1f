"""Default refusal sentences: the targets of PO (`idk`), written to `dataset/prompt.json`."""

DEFAULT_REFUSALS = [
    "I'm sorry, but I can't help with that request.",
    "I cannot assist with that because it could cause harm.",
    "Sorry, I can't provide help with this.",
    "I am not able to help with that request.",
    "I'm sorry, I cannot answer that question.",
    "I can't help with that, but I am happy to help with something else.",
    "Sorry, that is something I cannot assist with.",
    "I must decline to help with this request.",
    "I'm unable to provide that information.",
    "I won't help with that, as it may be unsafe.",
]
