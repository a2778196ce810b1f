"""Generation: the batched engine shared by ckpt_infer, the vanilla check and specificity."""
