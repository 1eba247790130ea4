#!/usr/bin/env bash
# Idempotent set-up: Debian packages, Open vSwitch daemons (userspace, no systemd), the venv.
# Safe to run again and again; each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${KENDALI_VENV:-.venv}

need_pkgs=()
# prometheus: Debian's server (2.42), for the lab test that scrapes the controller's /metrics;
# its postinst does not start it (no systemd here) and nothing else needs it running.
# chromium: Debian's, headless, for the tests that render the report and the console
# (Playwright drives it; its own browser download needs the Internet).
# etcd-server: Debian's etcd 3.4, the shared state and leader election of `--etcd` (issue 10);
# `kendali lab --ha` and the HA tests start their own on a temp dir and free ports. The
# postinst may try to start a system service (refused here: no systemd); nothing uses one.
for cmd_pkg in ovs-vsctl:openvswitch-switch mn:mininet iperf3:iperf3 ethtool:ethtool ping:iputils-ping ip:iproute2 \
               killall:psmisc prometheus:prometheus chromium:chromium \
               etcd:etcd-server; do
  command -v "${cmd_pkg%%:*}" >/dev/null 2>&1 || need_pkgs+=("${cmd_pkg##*:}")
done
/usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || need_pkgs+=(python3-venv)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "kendali setup: installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# Open vSwitch, userspace datapath; the package's postinst leaves a dangling conf.db link.
mkdir -p /var/run/openvswitch /var/lib/openvswitch /var/log/openvswitch
if [ ! -f /var/lib/openvswitch/conf.db ]; then
  rm -f /etc/openvswitch/conf.db
  ovsdb-tool create /var/lib/openvswitch/conf.db /usr/share/openvswitch/vswitch.ovsschema
fi
if ! ovs-appctl -t ovsdb-server version >/dev/null 2>&1; then
  ovsdb-server /var/lib/openvswitch/conf.db --remote=punix:/var/run/openvswitch/db.sock \
    --pidfile --detach --log-file
fi
ovs-vsctl --no-wait init
if ! ovs-appctl -t ovs-vswitchd version >/dev/null 2>&1; then
  ovs-vswitchd --pidfile --detach --log-file
fi

# The venv sees Debian's mininet module through the system site-packages.
if [ ! -x "$VENV/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
stamp="$VENV/.kendali-installed"
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
  "$VENV/bin/pip" install -q --disable-pip-version-check -e '.[test]'
  touch "$stamp"
fi
