"""The one door to detector conditions.

Conditions (geometry, channel map, field, digitiser settings and, from the
derivation stages, pedestals, calibrations and alignment) are versioned data
files with run-range validity, stored as::

    <root>/<setup>/<kind>/<version>.yaml   (or .json)

Each file carries its own header (``kind``, ``setup``, ``version``,
``valid_runs: [first, last]``, ``description``) and a ``data`` mapping. A
lookup by (kind, setup, run) must find exactly one file, or the version pinned
for that kind; anything else is a :class:`ConditionsError`, never a default.

>>> from recon.conditions import ConditionsDB
>>> db = ConditionsDB(["conditions"])                          # doctest: +SKIP
>>> db.geometry("invis2016", run=1).ecal.cell_size              # doctest: +SKIP
38.2
"""

from recon.conditions.channel_map import ChannelMap
from recon.conditions.db import ConditionRecord, ConditionsDB, ConditionsError
from recon.conditions.geometry import Geometry

__all__ = ["ChannelMap", "ConditionRecord", "ConditionsDB", "ConditionsError", "Geometry"]
