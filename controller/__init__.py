"""Kendali: an OpenFlow 1.3 SDN controller for a regency's own intranet."""

__version__ = "0.1.0"

# Every flow Kendali installs carries this cookie in its high 32 bits ("KNDL"),
# so the controller can tell its own flows from anything else on a switch.
COOKIE = 0x4B4E444C_00000000
COOKIE_MASK = 0xFFFFFFFF_00000000
