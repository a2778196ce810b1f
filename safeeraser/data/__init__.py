"""The SafeEraser data layer: records, training views, prompt encoding, the mini benchmark."""
from safeeraser.data.records import CATEGORIES, UNHARM_KEYS, Record, load_benchmark  # noqa: F401
from safeeraser.io import DataError  # noqa: F401
