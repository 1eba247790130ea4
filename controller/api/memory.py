"""What the controller remembers across restarts, besides the policies (store.py).

In the state directory:

    network.json   hosts (MAC, IPv4, switch, port), each OPD's meter number, the switches
                   last connected; replaced atomically, at most about once a second
    lldp.key       the secret that signs Kendali's LLDP (0600), made at first start

Why keep hosts and meter numbers here rather than recover them from the switches: a
switch's flows place a host (its delivery flow) but carry its IPv4 address only where
routing is declared, and without the address no host belongs to any OPD, so a restart in
discovery mode would compile every cap away (issue 13). Meter numbers are kept so that a
restarted controller modifies nothing on the switches: same ids, same meters.
The switches last connected tell a restarted controller whom to wait for before it
changes or removes anything (controller.core.controller, the restore window).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from controller.api.store import atomic_write, ensure_state_dir
from controller.errors import KendaliError

LOG = logging.getLogger("kendali.memory")
FORMAT = "kendali-network/1"
NETWORK_FILE = "network.json"
LLDP_KEY_FILE = "lldp.key"


def load(state_dir: Path) -> dict[str, Any]:
    """The remembered network, or an empty one. A damaged file is reported and ignored:
    it only speeds up a restart, and the switches and hosts teach everything again."""
    path = Path(state_dir) / NETWORK_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        LOG.warning("%s: cannot read (%s); starting without remembered hosts and meter numbers", path, exc)
        return {}
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        LOG.warning("%s: not a %s file; ignored", path, FORMAT)
        return {}
    return doc


def save(state_dir: Path, doc: dict[str, Any]) -> None:
    """Replace network.json (atomic: a kill -9 leaves the old or the new file)."""
    body = dict(doc, format=FORMAT)
    atomic_write(Path(state_dir) / NETWORK_FILE, (json.dumps(body, sort_keys=True) + "\n").encode("utf-8"))


def lldp_secret(state_dir: Path) -> bytes:
    """The LLDP signing secret, created (32 random bytes, 0600) at first start."""
    path = ensure_state_dir(Path(state_dir)) / LLDP_KEY_FILE
    if not path.exists():
        try:
            atomic_write(path, secrets.token_hex(32).encode("ascii") + b"\n", mode=0o600)
        except OSError as exc:
            raise KendaliError(f"cannot write the LLDP key: {exc.strerror}", str(path)) from None
    try:
        text = path.read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise KendaliError(f"cannot read the LLDP key ({exc}); delete it to have a new one made", str(path)) from None
    if len(key) < 16:
        raise KendaliError("the LLDP key is shorter than 16 bytes; delete it to have a new one made", str(path))
    if os.stat(path).st_mode & 0o077:
        raise KendaliError(f"other users can read the LLDP key; run: chmod 600 {path}", str(path))
    return key
