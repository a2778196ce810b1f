"""zlib (Carlini et al. 2021): the mean answer NLL over the answer's zlib entropy (the bytes of its
zlib-compressed UTF-8 text), negated: a text the model finds likelier than its compressibility explains
looks memorised."""
import zlib

from safeeraser.eval.mia.base import Attack


def zlib_entropy(text: str) -> int:
    return len(zlib.compress(text.encode("utf-8")))


ATTACK = Attack("zlib", lambda e, o: -e.scores.nll / zlib_entropy(e.answer))
