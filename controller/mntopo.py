"""Kept so that ``mn --custom controller/mntopo.py --topo kendali,FILE`` keeps working:
the Mininet topology now lives in controller/lab/mntopo.py (same usage there).

``mn --custom`` exec()s this file and copies every top-level name into its own globals,
so only ``topos`` is left at the top level.
"""

import sys as _sys
from pathlib import Path as _Path

_root = str(_Path(globals().get("__file__") or _sys._getframe().f_code.co_filename).resolve().parents[1])
if _root not in _sys.path:
    _sys.path.insert(0, _root)
from controller.lab.mntopo import topos as topos  # noqa: E402  (the name mn --custom looks up)
