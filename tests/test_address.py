"""controller.core.address: locator MACs (switch label + host number) and their sticky numbering."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core import address
from controller.core.address import Locators, label_mac, locator, parse
from controller.core.graph import Network

A, B, C = "02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:00:00:00:0c"


def test_a_locator_is_prefix_label_and_number():
    assert locator(0x1234, 0xABCD) == "0e:4b:12:34:ab:cd"
    assert locator(1, 1) == "0e:4b:00:01:00:01"
    assert label_mac(7) == "0e:4b:00:07:00:00"  # index 0: the switch itself
    assert parse("0e:4b:12:34:ab:cd") == (0x1234, 0xABCD)
    assert address.is_locator("0E:4B:00:01:00:02")


@pytest.mark.parametrize(
    "mac",
    [
        "02:4b:00:01:00:01",  # another prefix
        "0e:4c:00:01:00:01",
        "0e:4b:00:01:00",  # too short
        "0e:4b:00:01:00:01:00",
        "0e:4b:00:01:00:zz",  # not hex
        "0e4b00010001",  # no colons
        "",
        "ff:ff:ff:ff:ff:ff",
    ],
)
def test_anything_else_is_no_locator(mac):
    assert parse(mac) is None and not address.is_locator(mac)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.integers(0, address.MAX_LABEL), st.integers(0, address.MAX_INDEX))
def test_encode_and_parse_round_trip(label, index):
    mac = locator(label, index)
    assert len(mac) == 17 and mac.startswith("0e:4b:")
    assert parse(mac) == (label, index)


def test_a_host_with_a_locator_mac_is_never_learned():
    net = Network(edge_probation=0.0)
    net.switch_up(1, {1: True, 2: True}, 0.0)
    assert net.learn_host(A, "10.0.0.5", 1, 1, 1.0)
    forged = net.locator(A)
    assert not net.learn_host(forged, "10.0.0.6", 1, 2, 1.0)
    assert not net.learn_host(forged.upper(), "10.0.0.6", 1, 2, 1.0)
    assert forged not in net.hosts and forged.upper().lower() not in net.hosts


def test_numbers_are_sticky_per_switch_and_freed_when_a_host_moves():
    loc = Locators()
    assert loc.label(10) == 1 and loc.label(20) == 2 and loc.label(10) == 1
    assert (loc.host(A, 10), loc.host(B, 10), loc.host(C, 20)) == (1, 2, 1)
    assert loc.host(A, 10) == 1  # again on its switch (a port flap, another port): the same number
    assert loc.of(A) == locator(1, 1) and loc.of(C) == locator(2, 1)
    assert loc.mac_of(locator(1, 2)) == B and loc.mac_of(locator(1, 9)) is None
    assert loc.mac_of(locator(9, 1)) is None and loc.mac_of(A) is None
    # A moves to switch 20: a new number there, its old one is free for the next host at 10.
    assert loc.host(A, 20) == 2 and loc.of(A) == locator(2, 2)
    assert loc.mac_of(locator(1, 1)) is None
    assert loc.host("02:00:00:00:00:0d", 10) == 1
    assert loc.of("02:00:00:00:00:99") is None


def test_a_full_switch_reclaims_the_numbers_of_hosts_no_longer_present(monkeypatch):
    monkeypatch.setattr(address, "MAX_INDEX", 2)
    loc = Locators()
    loc.label(1)
    assert loc.host(A, 1) == 1 and loc.host(B, 1) == 2
    with pytest.raises(ValueError, match="more than 2 hosts on switch 0x1"):
        loc.host(C, 1, present={A: 1, B: 1})
    assert loc.host(C, 1, present={B: 1}) == 1  # A is gone: its number is reused
    assert loc.of(A) is None and loc.of(B) == locator(1, 2)


def test_the_network_numbers_every_host_it_puts_in_its_table():
    net = Network(edge_probation=0.0)
    net.switch_up(5, {1: True, 2: True}, 0.0)
    net.switch_up(6, {1: True}, 0.0)
    assert net.learn_host(A, None, 5, 1, 1.0) and net.learn_host(B, None, 6, 1, 1.0)
    assert parse(net.locator(A)) == (net.label(5), 1) and parse(net.locator(B)) == (net.label(6), 1)
    assert net.label(5) != net.label(6)
    with pytest.raises(KeyError):
        net.locator(C)


def test_adopt_takes_a_remembered_locator_unless_someone_else_has_it():
    loc = Locators()
    assert not loc.adopt(1, A, "02:00:00:00:00:01")  # not a locator
    assert loc.adopt(1, A, locator(7, 3)) and loc.labels[1] == 7 and loc.of(A) == locator(7, 3)
    assert loc.adopt(1, B, locator(7, 4)) and loc.of(B) == locator(7, 4)
    assert not loc.adopt(1, C, locator(7, 3))  # A holds that number
    assert not loc.adopt(1, C, locator(8, 1))  # 1 gave out numbers under label 7 already
    assert not loc.adopt(2, C, locator(7, 5))  # label 7 is switch 1's
    assert loc.of(C) is None
    # The next number at 1 skips the adopted ones.
    assert loc.host(C, 1) == 1 and loc.host("02:00:00:00:00:0d", 1) == 2
    assert loc.host("02:00:00:00:00:0e", 1) == 5


def test_adopt_takes_a_label_back_from_a_switch_that_only_had_it_afresh():
    """After a restart without the state dir, switches connect in another order: the label a
    switch's flows carry may have been handed out to another switch just now."""
    loc = Locators()
    assert loc.label(2) == 1 and loc.label(1) == 2  # 2 connected first this time
    assert loc.adopt(1, A, locator(1, 1))  # switch 1's flows: its hosts had label 1
    assert loc.labels[1] == 1 and loc.labels[2] not in (1, None) and loc.of(A) == locator(1, 1)
    assert loc.adopt(2, B, locator(2, 1))  # and switch 2's flows: label 2 (freed by switch 1)
    assert loc.labels == {1: 1, 2: 2} and loc.of(B) == locator(2, 1)
    # A label with numbers given out under it, or remembered, is never taken.
    loc.label(3)
    loc.host(C, 3)
    assert not loc.adopt(4, "02:00:00:00:00:0d", locator(loc.labels[3], 2))
    kept = Locators.from_json({"labels": {"5": 9}})
    assert not kept.adopt(6, A, locator(9, 1)) and kept.labels == {5: 9}


def test_json_round_trip():
    loc = Locators()
    loc.label(10)
    loc.label(20)
    loc.host(A, 10)
    loc.host(B, 20)
    loc.host(C, 20)
    doc = loc.to_json()
    back = Locators.from_json(doc)
    assert back.labels == loc.labels and back.hosts == loc.hosts
    assert back.to_json() == doc
    assert back.host("02:00:00:00:00:0d", 20) == 3 and back.label(30) == 3


@pytest.mark.parametrize(
    "doc",
    [
        None,
        [],
        "labels",
        {"labels": [1, 2], "hosts": "x"},
        {"labels": {"x": 1, "2": "y", "3": None}},
        {"labels": {"1": 0, "2": address.MAX_LABEL + 1}},
        {"hosts": {A: [1], B: "12", C: None, "02:00:00:00:00:0d": [1, 0], "02:00:00:00:00:0e": {"a": 1}}},
        {"hosts": {A: [1, address.MAX_INDEX + 1], 5: [1, 1]}},
    ],
)
def test_damaged_json_is_skipped_entry_by_entry(doc):
    loc = Locators.from_json(doc)
    assert loc.labels == {} and loc.hosts == {}
    assert loc.label(1) == 1  # and numbering starts afresh


def test_damaged_entries_do_not_cost_the_good_ones():
    doc: dict[str, Any] = {
        "labels": {"1": 5, "2": 5, "3": 6, "bad": 7},  # label 5 twice: the first keeps it
        "hosts": {A.upper(): [1, 1], B: [1, 1], C: [3, "2"], "02:00:00:00:00:0d": [3, None]},
    }
    loc = Locators.from_json(doc)
    assert loc.labels == {1: 5, 3: 6}
    assert loc.hosts == {A: (1, 1), C: (3, 2)}  # B's number was A's already
    assert loc.of(A) == locator(5, 1) and loc.label(2) == 1


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-5, 70000) | st.text(max_size=20) | st.floats(allow_nan=True),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=17), inner, max_size=4),
        max_leaves=20,
    )
)
def test_any_json_is_read_without_an_error(doc):
    for d in (doc, {"labels": doc, "hosts": doc}):
        loc = Locators.from_json(d)
        assert all(1 <= n <= address.MAX_LABEL for n in loc.labels.values())
        assert len(set(loc.labels.values())) == len(loc.labels)
        assert all(1 <= i <= address.MAX_INDEX for _d, i in loc.hosts.values())
        assert len(set(loc.hosts.values())) == len(loc.hosts)
