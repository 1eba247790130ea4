"""The declared topology as a Mininet Topo: same dpids, same port numbers, same hosts.

Used two ways:

* from Python: ``KendaliTopo(load("topologies/ppu.yaml"))`` (controller.lab.mininet_lab does this);
* from Mininet's own command line (Mininet passes the text after the comma as a
  positional argument, numbers converted, strings kept)::

      mn --custom controller/mntopo.py --topo kendali,topologies/ppu.yaml \\
         --switch ovs,datapath=user,protocols=OpenFlow13 --controller remote,port=6653

Linux interface names are at most 15 characters and Mininet names a switch port
``<switch>-eth<port>``, so topology switch names (``sw-disdukcapil``) cannot be used as
Mininet names: switches become ``<prefix>s1..sN`` in file order; hosts keep their name
when ``<name>-eth0`` fits and is unambiguous, else ``h1..``. ``KendaliTopo.names`` maps
topology name -> Mininet name (``KendaliTopo.topo_names`` the reverse).

Note: ``mn --custom`` exec()s this file with no ``__file__`` and copies EVERY top-level
name into mn's own globals (mininet/bin/mn, setCustom), so a top-level ``Host`` or
``Link`` would silently replace Mininet's classes there. Hence the underscore names.
"""

from __future__ import annotations

import ipaddress as _ipaddress
import re as _re
import sys as _sys
from pathlib import Path as _Path
from typing import Any as _Any

# Where this file lives, also when mn exec()s it (no __file__ then).
_HERE = _Path(globals().get("__file__") or _sys._getframe().f_code.co_filename).resolve()
_ROOT = _HERE.parents[2]
if str(_ROOT) not in _sys.path:
    _sys.path.insert(0, str(_ROOT))

try:
    from mininet.topo import Topo as _Topo
except ImportError:  # pragma: no cover - depends on the machine
    raise ImportError(
        f"Mininet is not importable from {_sys.executable}: run `bash scripts/setup.sh` and use "
        ".venv/bin/python (a venv with --system-site-packages) or /usr/bin/python3"
    ) from None

try:
    import controller.core.topology as _kt
except ModuleNotFoundError as _exc:  # /usr/bin/mn runs the system Python, which lacks jsonschema
    _venv = _ROOT / ".venv" / "lib" / f"python{_sys.version_info[0]}.{_sys.version_info[1]}" / "site-packages"
    if not _venv.is_dir():
        raise ImportError(f"{_exc.name} is missing for {_sys.executable}: run `bash scripts/setup.sh`") from None
    _sys.path.append(str(_venv))
    import controller.core.topology as _kt
from controller.errors import KendaliError as _KendaliError

IFNAMSIZ = 15  # Linux interface name limit, without the trailing NUL
_SAFE = _re.compile(r"^[a-zA-Z][a-zA-Z0-9]*$")


def _ifname_ok(node: str, port: int) -> bool:
    return len(f"{node}-eth{port}") <= IFNAMSIZ


def flat_network(topology: _kt.Topology) -> _ipaddress.IPv4Network:
    """The smallest IPv4 network holding every declared subnet (10.0.0.0/8 for ppu).

    Standalone L2 labs have no router, so hosts are given this prefix to be all on-link.
    """
    nets = [s.network for s in topology.subnets.values()] or [_ipaddress.IPv4Network("10.0.0.0/8")]
    wide = nets[0]
    while not all(n.subnet_of(wide) for n in nets):
        wide = wide.supernet()
    return wide


def mininet_names(topology: _kt.Topology, prefix: str = "") -> dict[str, str]:
    """Topology name -> Mininet name for every switch and host. Raises KendaliError if too long."""
    if prefix and not _re.fullmatch(r"[a-z][a-z0-9]{0,5}", prefix):
        raise _KendaliError("a lab prefix is 1-6 lower-case letters/digits, starting with a letter", "lab", "prefix")
    names: dict[str, str] = {}
    max_port: dict[str, int] = {}
    for l in topology.links:
        max_port[l.a] = max(max_port.get(l.a, 0), l.a_port)
        max_port[l.b] = max(max_port.get(l.b, 0), l.b_port)
    for h in topology.hosts:
        max_port[h.switch] = max(max_port.get(h.switch, 0), h.port)
    for i, sw in enumerate(topology.switches.values(), start=1):
        mn = f"{prefix}s{i}"
        if not _ifname_ok(mn, max_port.get(sw.name, 0)):
            raise _KendaliError(
                f"Mininet name {mn!r} with port {max_port[sw.name]} exceeds {IFNAMSIZ} characters; "
                "use a shorter prefix",
                topology.source or topology.name,
                f"switch {sw.name}",
            )
        names[sw.name] = mn
    taken = set(names.values())
    n = 0
    for h in topology.hosts:
        mn = h.name
        # Host interfaces live in the host's namespace, so host names need no run prefix,
        # only to be a valid, short name that no switch already has.
        if not _SAFE.match(mn) or not _ifname_ok(mn, 0) or mn in taken:
            while True:
                n += 1
                mn = f"h{n}"
                if mn not in taken and mn not in {x.name for x in topology.hosts}:
                    break
        names[h.name] = mn
        taken.add(mn)
    return names


class KendaliTopo(_Topo):
    """Mininet topology built from a controller.topology.Topology.

    prefix: prepended to switch names so two lab runs never share a bridge name.
    flat: give every host the prefix of ``flat_network()`` and no default route
          (standalone L2 labs, no router); otherwise each host gets its subnet's prefix
          and a default route via the subnet gateway (the controller answers for it).
    """

    def build(self, topology: _kt.Topology, prefix: str = "", flat: bool = False) -> None:
        self.topology = topology
        self.prefix = prefix
        self.flat = flat
        self.names: dict[str, str] = mininet_names(topology, prefix)
        self.topo_names: dict[str, str] = {v: k for k, v in self.names.items()}
        for sw in topology.switches.values():
            self.addSwitch(self.names[sw.name], dpid=f"{sw.dpid:016x}")
        for l in topology.links:
            self.addLink(self.names[l.a], self.names[l.b], port1=l.a_port, port2=l.b_port)
        flatnet = flat_network(topology) if flat else None
        for sub in topology.subnets.values():
            for h in sub.hosts:
                params: dict[str, _Any] = {"mac": h.mac}
                if flatnet is not None:
                    params["ip"] = f"{h.ip}/{flatnet.prefixlen}"
                else:
                    params["ip"] = f"{h.ip}/{sub.network.prefixlen}"
                    params["defaultRoute"] = f"via {sub.gateway}"
                name = self.addHost(self.names[h.name], **params)
                self.addLink(name, self.names[h.switch], port1=0, port2=h.port)


def _from_path(path: str | _Path = _kt.DEFAULT_TOPOLOGY, prefix: str = "", flat: bool = False) -> KendaliTopo:
    try:
        return KendaliTopo(_kt.load(path), prefix=str(prefix), flat=bool(flat))
    except _KendaliError as exc:  # mn would print a traceback; one line is enough
        raise SystemExit(f"kendali topology: {exc}") from None


# mn --topo kendali[,PATH[,prefix=X][,flat=1]]
topos = {"kendali": _from_path}
