// The topology map: a radial tree drawn as SVG from GET /v1/topology.
// The core switch (role "core"; else the best-connected one) sits in the centre, each
// switch on the ring of its hop count from it and every switch without switches behind
// it (the OPDs' edge switches) on the outer ring, where its name has room; every subtree
// gets its own slice of the circle, as wide as its number of outer switches. Links that
// are not tree edges (rings, second uplinks) are drawn too, as chords. No library.

const SVG = "http://www.w3.org/2000/svg";
const ROLE_RANK = { core: 0, datacenter: 1, distribution: 2, edge: 3 };
const W = 1000;
const H = 720;

export function el(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined) e.setAttribute(k, String(v));
  }
  for (const c of children) e.append(c);
  return e;
}

export function label(sw) {
  return sw.name || `0x${Number(sw.dpid).toString(16)}`;
}

// Positions {dpid: {x, y, angle, leaf}} in a W x H box centred on 0, 0.
export function layout(switches, links, labelRoom) {
  const byId = new Map(switches.map((s) => [s.dpid, s]));
  const adj = new Map(switches.map((s) => [s.dpid, new Set()]));
  for (const l of links) {
    const a = l.a.dpid;
    const b = l.b.dpid;
    if (a !== b && adj.has(a) && adj.has(b)) {
      adj.get(a).add(b);
      adj.get(b).add(a);
    }
  }
  const rank = (d) => ROLE_RANK[byId.get(d).role] ?? 4;
  const order = (a, b) => rank(a) - rank(b) || label(byId.get(a)).localeCompare(label(byId.get(b)));
  const ids = [...byId.keys()].sort(order);
  let roots = ids.filter((d) => byId.get(d).role === "core");
  if (!roots.length && ids.length) {
    roots = [[...ids].sort((a, b) => adj.get(b).size - adj.get(a).size || order(a, b))[0]];
  }
  const depth = new Map();
  const children = new Map(ids.map((d) => [d, []]));
  const tops = [];
  const grow = (start) => {
    let frontier = [];
    for (const r of start) {
      if (!depth.has(r)) {
        depth.set(r, 0);
        tops.push(r);
        frontier.push(r);
      }
    }
    while (frontier.length) {
      const next = [];
      for (const d of frontier) {
        for (const n of [...adj.get(d)].sort(order)) {
          if (!depth.has(n)) {
            depth.set(n, depth.get(d) + 1);
            children.get(d).push(n);
            next.push(n);
          }
        }
      }
      frontier = next;
    }
  };
  grow(roots);
  for (const d of ids) grow([d]); // switches not connected to the core: their own trees
  // One top in the centre; several: on the first ring around an empty centre.
  const shift = tops.length === 1 ? 0 : 1;
  const maxDepth = Math.max(1, ...[...depth.values()].map((v) => v + shift));
  const leaves = new Map();
  const count = (d) => {
    const n = children.get(d).reduce((sum, c) => sum + count(c), 0) || 1;
    leaves.set(d, n);
    return n;
  };
  const total = tops.reduce((sum, t) => sum + count(t), 0) || 1;
  const rx = W / 2 - labelRoom;
  const ry = H / 2 - Math.min(labelRoom, 90);
  const pos = {};
  const place = (d, a0, a1) => {
    const angle = (a0 + a1) / 2;
    const level = depth.get(d) + shift;
    const r = level === 0 ? 0 : children.get(d).length ? level / maxDepth : 1;
    pos[d] = { x: rx * r * Math.cos(angle), y: ry * r * Math.sin(angle), angle, leaf: !children.get(d).length };
    let a = a0;
    for (const c of children.get(d)) {
      const span = ((a1 - a0) * leaves.get(c)) / leaves.get(d);
      place(c, a, a + span);
      a += span;
    }
  };
  let a = -Math.PI / 2;
  for (const t of tops) {
    const span = (2 * Math.PI * leaves.get(t)) / total;
    place(t, a, a + span);
    a += span;
  }
  return pos;
}

export function utilisation(link) {
  const u = link.usage;
  if (!u) return null;
  const values = [u.a_to_b?.utilisation, u.b_to_a?.utilisation].filter((v) => typeof v === "number");
  return values.length ? Math.max(...values) : null;
}

export function utilClass(link) {
  if (link.state !== "up") return "u-down";
  const u = utilisation(link);
  if (u === null || u < 0.005) return "u-idle";
  if (u < 0.5) return "u-low";
  if (u < 0.8) return "u-mid";
  return "u-high";
}

export function mbit(bps) {
  if (bps === null || bps === undefined) return "–";
  if (bps === 0) return "0 Mbit/s";
  const m = bps / 1e6;
  return m >= 100 ? `${m.toFixed(0)} Mbit/s` : m >= 10 ? `${m.toFixed(1)} Mbit/s` : `${m.toFixed(2)} Mbit/s`;
}

function linkTitle(l) {
  const a = `${l.a.name || l.a.dpid}:${l.a.port}`;
  const b = `${l.b.name || l.b.dpid}:${l.b.port}`;
  const lines = [`${a} – ${b}`, l.state === "up" ? "up" : "DOWN (declared, not seen)"];
  if (l.capacity_mbps) lines.push(`capacity ${l.capacity_mbps} Mbit/s`);
  const u = l.usage;
  if (u) {
    for (const [dir, from, to] of [["a_to_b", a, b], ["b_to_a", b, a]]) {
      const d = u[dir];
      if (d && d.bps !== null) {
        const pct = d.utilisation !== null ? ` (${(d.utilisation * 100).toFixed(1)} %)` : "";
        lines.push(`${from} → ${to}: ${mbit(d.bps)}${pct}`);
      }
    }
  }
  return lines.join("\n");
}

const CHAR_W = 6.6; // px per character of a switch name at the map's font size

function radius(sw) {
  return sw.role === "core" ? 11 : sw.role === "edge" ? 6.5 : 8.5;
}

// The viewBox around what is drawn (names included): a small network is not lost in a big box.
function fit(switches, pos) {
  let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
  const grow = (x, y) => {
    [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
  };
  for (const s of switches) {
    const p = pos[s.dpid];
    const r = radius(s);
    const len = label(s).length * CHAR_W * 1.1; // generous: a cut name is worse than a margin
    grow(p.x - r - 4, p.y - r - 4);
    grow(p.x + r + 4, p.y + r + 4);
    if (p.leaf && (p.x !== 0 || p.y !== 0)) {
      grow(p.x + Math.cos(p.angle) * (r + 6 + len), p.y + Math.sin(p.angle) * (r + 6 + len));
    } else {
      grow(p.x - len / 2 - 4, p.y + r + 18);
      grow(p.x + len / 2 + 4, p.y + r + 18);
    }
  }
  if (!switches.length) [x0, y0, x1, y1] = [-W / 2, -H / 2, W / 2, H / 2];
  const pad = 12;
  const minH = 260; // a flat network (a core and two edges) still gets some height
  const h = Math.max(minH, y1 - y0 + 2 * pad);
  const cy = (y0 + y1) / 2;
  return `${(x0 - pad).toFixed(0)} ${(cy - h / 2).toFixed(0)} ${(x1 - x0 + 2 * pad).toFixed(0)} ${h.toFixed(0)}`;
}

// The map as one <svg>; switches carry data-name (tests and people find them).
export function drawMap(topo) {
  const switches = topo.switches || [];
  const links = topo.links || [];
  const longest = Math.max(4, ...switches.map((s) => label(s).length));
  const labelRoom = Math.min(160, 24 + longest * CHAR_W);
  const pos = layout(switches, links, labelRoom);
  const svg = el("svg", {
    viewBox: fit(switches, pos),
    role: "img",
    "aria-label": `network map: ${switches.length} switches, ${links.length} links`,
  });
  const gLinks = el("g", { class: "links" });
  const downLast = [...links].sort((x, y) => (x.state === "up") - (y.state === "up")).reverse();
  for (const l of downLast) {
    const p = pos[l.a.dpid];
    const q = pos[l.b.dpid];
    if (!p || !q) continue;
    const width = l.capacity_mbps ? 1.5 + Math.max(0, Math.log10(l.capacity_mbps / 10)) : 2;
    const line = el("line", {
      x1: p.x.toFixed(1),
      y1: p.y.toFixed(1),
      x2: q.x.toFixed(1),
      y2: q.y.toFixed(1),
      class: `link ${utilClass(l)}`,
      "stroke-width": width.toFixed(1),
      "data-state": l.state,
    });
    line.append(el("title", {}, linkTitle(l)));
    gLinks.append(line);
  }
  const gNodes = el("g", { class: "switches" });
  for (const s of switches) {
    const p = pos[s.dpid];
    const r = radius(s);
    const g = el("g", {
      class: `switch role-${s.role || "none"}${s.connected ? "" : " off"}`,
      transform: `translate(${p.x.toFixed(1)} ${p.y.toFixed(1)})`,
      "data-name": label(s),
      "data-dpid": s.dpid,
    });
    g.append(el("circle", { r }));
    const title = [label(s), s.site, `dpid ${s.dpid}`, s.connected ? "connected" : "NOT CONNECTED"];
    g.append(el("title", {}, title.filter(Boolean).join("\n")));
    let text;
    if (p.leaf && (p.x !== 0 || p.y !== 0)) {
      // Outermost switches: the name along the radius, outwards, never upside down.
      const deg = (p.angle * 180) / Math.PI;
      const flip = Math.cos(p.angle) < 0;
      text = el(
        "text",
        {
          x: flip ? -(r + 4) : r + 4,
          y: 0,
          dy: "0.32em",
          transform: `rotate(${(flip ? deg + 180 : deg).toFixed(1)})`,
          "text-anchor": flip ? "end" : "start",
        },
        label(s),
      );
    } else {
      text = el("text", { x: 0, y: r + 13, "text-anchor": "middle", class: "inner" }, label(s));
    }
    g.append(text);
    gNodes.append(g);
  }
  svg.append(gLinks, gNodes);
  return svg;
}
