"""Keras v3 archives (``.keras``): a zip whose ``config.json`` may name Lambda layers
or modules outside Keras. (Keras HDF5 files are the ``hdf5`` format.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keyscope.modelfiles.structured import StructuredIssue

MAX_KERAS_CONFIG = 64 * 1024 * 1024


def keras_zip_issues(data: bytes) -> list[StructuredIssue]:
    """The config of a zip that is a Keras archive (``config.json`` next to
    ``metadata.json`` or ``model.weights.h5``); nothing for any other zip."""
    if b"config.json" not in data[-65536:]:
        return []
    # The zip reader is the container walk's (which sniffs through the registry that
    # imports this module): imported here, when a zip is checked, not at import time.
    from keyscope.modelfiles.containers import zip_by_name, zip_read
    from keyscope.modelfiles.structured import StructuredIssue, keras_config_issues

    members = zip_by_name(data)
    if isinstance(members, str) or "config.json" not in members:
        return []
    if not members.keys() & {"metadata.json", "model.weights.h5"}:
        return []
    config = zip_read(data, members["config.json"], MAX_KERAS_CONFIG)
    if isinstance(config, str):
        # A member that cannot be read is reported by the container walk; only
        # a config too large for this check is reported here.
        big = members["config.json"].usize > MAX_KERAS_CONFIG or "bomb" in config
        note = f"Keras config larger than {MAX_KERAS_CONFIG} bytes: not scanned"
        return [StructuredIssue(("config.json",), "low", "anomaly", note)] if big else []
    return keras_config_issues(config.decode("utf-8", "replace"), ("config.json",))
