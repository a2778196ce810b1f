"""The one way a registry finds what it names: a module of its own package, or a module anywhere given by a
dotted path (an addition kept outside the package: a user's, a test's toy), and the object it defines."""
from __future__ import annotations

import importlib


def load_registered(package: str, module: str, attribute: str):
    """`attribute` of `module` (a name in `package`, or a dotted path)."""
    return getattr(importlib.import_module(module if "." in module else f"{package}.{module}"), attribute)
