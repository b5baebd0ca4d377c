"use strict";
// keyscope's HTML report: renders the JSON embedded in #keyscope-data. Every string
// goes into the page as text (textContent / attributes), never as markup.
(function () {
  const t0 = performance.now();
  const D = JSON.parse(document.getElementById("keyscope-data").textContent);
  const SEVERITIES = ["critical", "high", "medium", "low", "info"];
  const RANK = { critical: 4, high: 3, medium: 2, low: 1, info: 0 };
  const PAGE = 40;
  const NOW = D.now ? Date.parse(D.now) : Date.now();
  const checked = new Map(); // checklist state, in the page only

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    if (attrs) for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v; else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }
  const SVG = "http://www.w3.org/2000/svg";
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    for (const c of children) el.append(c instanceof Node ? c : String(c));
    return el;
  }
  const day = (iso) => (iso ? String(iso).slice(0, 10) : "");
  const sevBadge = (sev) => h("span", { class: "sev sev-" + sev }, sev);
  const place = (loc) => [loc.path, ...(loc.origin || []).filter((o) => o !== "base64" && o !== "utf-16")].join("!/");

  // ---- the model: one group per account (else per credential) ----
  const findings = D.findings.map((f, i) => {
    const a = { ...f, capabilities: D.shared[f.capabilities], revocation: D.shared[f.revocation] };
    const text = [f.sentence, f.redacted, f.rule_id, a.kind_label, a.account || "", a.provider,
      ...f.locations.map(place), ...f.owners.map((o) => o.name + " " + (o.email || ""))].join("\n").toLowerCase();
    return { i, f, a, sev: f.severity, text, paths: f.locations.map(place).join("\n").toLowerCase() };
  });
  const groups = new Map();
  for (const x of findings) {
    const key = x.a.account ? x.a.provider + ":" + x.a.account : "fp:" + x.f.fingerprint;
    let g = groups.get(key);
    if (!g) {
      g = { key, account: x.a.account, provider: x.a.provider, items: [],
        subject: x.a.account ? "storage account '" + x.a.account + "'" : "credential " + x.f.fingerprint };
      groups.set(key, g);
    }
    g.items.push(x);
  }
  const timelines = new Map((D.timeline || []).map((t) => [t.subject, t.events]));
  const allGroups = [...groups.values()];
  for (const g of allGroups) {
    g.rank = Math.max(...g.items.map((x) => RANK[x.sev] ?? 0));
    g.sev = SEVERITIES[4 - g.rank];
    g.title = g.account ? g.account : g.items[0].a.kind_label;
  }
  allGroups.sort((a, b) => b.rank - a.rank || String(a.title).localeCompare(String(b.title)));
  allGroups.forEach((g, n) => { g.id = "acct-" + n; });

  // ---- filters ----
  const state = { sev: new Set(SEVERITIES), provider: "", account: "", path: "", q: "" };
  function matches(x) {
    if (!state.sev.has(x.sev)) return false;
    if (state.provider && x.a.provider !== state.provider) return false;
    if (state.account && (x.a.account || "") !== state.account) return false;
    if (state.path && !x.paths.includes(state.path)) return false;
    if (state.q && !x.text.includes(state.q)) return false;
    return true;
  }
  let shown = [];
  let rendered = 0;

  // ---- summary ----
  function countBy(list, key) {
    const m = new Map();
    for (const x of list) m.set(key(x), (m.get(key(x)) || 0) + 1);
    return m;
  }
  function summaryTable(caption, rows, total, badge) {
    const max = Math.max(1, ...rows.map((r) => r[1]));
    return h("table", null, h("caption", { class: "sr-only" }, caption),
      h("thead", null, h("tr", null, h("th", { scope: "col" }, caption), h("th", { scope: "col" }, "credentials"), h("th", { scope: "col" }, h("span", { class: "sr-only" }, "share")))),
      h("tbody", null, rows.map(([k, n]) => h("tr", null,
        h("th", { scope: "row" }, badge ? sevBadge(k) : k), h("td", { class: "n" }, n),
        h("td", null, h("span", { class: "meter", style: "width:" + Math.round((n / max) * 8) + "rem", "aria-hidden": "true" }))))),
      h("tfoot", null, h("tr", null, h("th", { scope: "row" }, "total"), h("td", { class: "n" }, total), h("td"))));
  }
  function summary() {
    const bySev = countBy(findings, (x) => x.sev);
    const byProv = countBy(findings, (x) => x.a.provider);
    const st = D.stats || {};
    return h("section", { "aria-labelledby": "summary-heading" },
      h("h2", { id: "summary-heading" }, "Summary"),
      h("p", { class: "muted" }, `${findings.length} credentials in ${allGroups.length} accounts; ` +
        (D.inventory ? `from the inventory (${D.inventory.scans} scans recorded)` :
          `${(D.model_findings || []).length} model-file findings; ${st.files ?? 0} files, ${st.bytes ?? 0} bytes scanned`) +
        ((D.skipped || []).length ? `; ${D.skipped.length} skipped` : "")),
      h("div", { class: "summary" },
        summaryTable("severity", SEVERITIES.filter((k) => bySev.get(k)).map((k) => [k, bySev.get(k)]), findings.length, true),
        summaryTable("provider", [...byProv.entries()].sort((a, b) => b[1] - a[1]), findings.length, false)));
  }

  // ---- pieces of a card ----
  function validityBar(v) {
    const start = v.start ? Date.parse(v.start) : null;
    const end = v.expiry ? Date.parse(v.expiry) : null;
    const W = 600, L = 10, R = 590;
    const lo = Math.min(start ?? NOW, NOW), hi = Math.max(end ?? NOW, NOW);
    const span = Math.max(hi - lo, 1);
    const x = (t) => L + ((t - lo) / span) * (R - L);
    const x0 = start === null ? L : x(start), x1 = end === null ? R : x(end);
    const label = `valid from ${start === null ? "an unknown start" : day(v.start)} until ` +
      `${end === null ? "revoked (no expiry)" : day(v.expiry)}; now is ${day(D.now)}` + (v.expired ? " (expired)" : "");
    const nx = x(NOW);
    return s("svg", { viewBox: `0 0 ${W} 46`, width: W, height: 46, role: "img", "aria-label": label, class: "validity" },
      s("title", {}, label),
      s("line", { class: "axis", x1: L, x2: R, y1: 20, y2: 20 }),
      s("rect", { class: "valid" + (v.expired ? " expired" : ""), x: x0, y: 13, width: Math.max(x1 - x0, 2), height: 14, rx: 3 }),
      s("text", { x: x0, y: 42, "text-anchor": "start" }, start === null ? "start ?" : day(v.start)),
      s("text", { x: x1, y: 42, "text-anchor": "end" }, end === null ? "no expiry" : day(v.expiry)),
      s("line", { class: "now", x1: nx, x2: nx, y1: 4, y2: 32 }),
      s("text", { x: Math.min(Math.max(nx, 20), W - 20), y: 10, "text-anchor": "middle" }, "now"));
  }
  function eventsOf(g) {
    const evs = timelines.get(g.subject) || [];
    const seen = new Set();
    let gone = false;
    // a rename: the same credential removed from one path and added at another in one commit
    const moved = (ev, other) => ev.commit && evs.some((o) => o.event === other && o.commit === ev.commit && o.fingerprint === ev.fingerprint && o.path !== ev.path);
    const out = evs.filter((ev) => !(ev.event === "removed" && moved(ev, "introduced"))).map((ev) => {
      let kind = ev.event;
      if (kind === "introduced" && moved(ev, "removed")) kind = "moved";
      else if (kind === "introduced" && seen.size && !seen.has(ev.fingerprint)) kind = "re-issued";
      if (kind === "introduced" || kind === "at-boundary") seen.add(ev.fingerprint);
      if (kind === "removed") {
        kind = evs.some((o) => o.event === "introduced" && o.commit === ev.commit && o.fingerprint !== ev.fingerprint) ? "replaced" : "deleted";
      }
      return { ...ev, kind };
    });
    for (const x of g.items) for (const loc of x.f.locations) if (loc.git && loc.git.removed_from_head) gone = true;
    return { events: out, stillInHistory: gone };
  }
  function timelineChart(g) {
    const { events, stillInHistory } = eventsOf(g);
    if (!events.length) return null;
    const times = events.map((e) => Date.parse(e.date)).filter((t) => !isNaN(t));
    if (!times.length) times.push(NOW);
    const lo = Math.min(...times), hi = Math.max(...times, NOW);
    const W = 600, L = 20, R = 580, span = Math.max(hi - lo, 1);
    const x = (t) => L + ((t - lo) / span) * (R - L);
    const cls = { introduced: "ev-introduced", captured: "ev-introduced", "first-seen": "ev-introduced", gone: "ev-removed", "re-issued": "ev-reissued", deleted: "ev-removed", replaced: "ev-removed", moved: "ev-boundary", "at-boundary": "ev-boundary" };
    const svg = s("svg", { viewBox: `0 0 ${W} 62`, width: W, height: 62, role: "img", class: "timeline",
      "aria-label": `timeline of ${g.subject}: ` + events.map((e) => `${e.kind} ${day(e.date)}`).join(", ") + (stillInHistory ? "; still in history" : "") });
    svg.append(s("line", { class: "axis", x1: L, x2: R, y1: 30, y2: 30 }));
    if (stillInHistory) {
      const lastDel = Math.max(...events.filter((e) => e.kind === "deleted").map((e) => Date.parse(e.date)).filter((t) => !isNaN(t)), lo);
      svg.append(s("rect", { class: "history", x: x(lastDel), y: 20, width: Math.max(x(NOW) - x(lastDel), 3), height: 20 }));
      svg.append(s("text", { x: (x(lastDel) + x(NOW)) / 2, y: 56, "text-anchor": "middle" }, "still in history"));
    }
    // numbered markers (the list below tells each one); markers that would overlap stack
    const placed = [];
    events.forEach((e, n) => {
      if (isNaN(Date.parse(e.date))) return;
      const cx = x(Date.parse(e.date));
      const lane = placed.filter((p) => Math.abs(p - cx) < 16).length;
      placed.push(cx);
      const cy = 30, ty = 16;
      const lx = cx + lane * 16;
      const mark = e.kind === "deleted" || e.kind === "replaced" ? s("rect", { class: cls[e.kind], x: lx - 6, y: cy - 6, width: 12, height: 12 })
        : e.kind === "re-issued" ? s("path", { class: cls[e.kind], d: `M${lx} ${cy - 8} l8 8 l-8 8 l-8 -8 z` })
        : s("circle", { class: cls[e.kind] || "ev-boundary", cx: lx, cy, r: 7 });
      const by = e.commit ? ` in ${String(e.commit).slice(0, 10)} by ${e.author}` : "";
      mark.append(s("title", {}, `${n + 1}: ${e.kind} ${day(e.date)}${by}: ${e.path}:${e.line}`));
      svg.append(mark);
      svg.append(s("text", { x: lx, y: ty, "text-anchor": "middle" }, String(n + 1)));
    });
    svg.append(s("text", { x: L, y: 56, "text-anchor": "start" }, day(new Date(lo).toISOString())));
    svg.append(s("text", { x: R, y: 56, "text-anchor": "end" }, "now " + day(D.now)));
    svg.append(s("line", { class: "now", x1: x(NOW), x2: x(NOW), y1: 18, y2: 42 }));
    // a web page (crawl, web archive) has a capture time, no commit and no author
    const list = h("ol", { class: "events" }, events.map((e) => h("li", null,
      h("strong", null, e.kind), ` ${day(e.date)} · `,
      e.commit ? h("code", null, String(e.commit).slice(0, 10)) : "page",
      `${e.commit ? " · " + e.author : ""} · ${e.path}${e.origin && e.origin.length ? "!/" + e.origin.join("!/") : ""}:${e.lines && e.lines.length ? e.lines.join(",") : e.line}` +
      (e.expiry ? ` · expires ${day(e.expiry)}` : ""))));
    if (stillInHistory) list.append(h("li", null, h("strong", null, "still in history"), " · deleting the file did not revoke the credential: anyone with a clone can read it"));
    return h("div", { class: "timeline-block" }, h("h4", null, "Timeline"), svg, list);
  }
  // a container image: where each file holding the credential was added and hidden, by layer
  function layerChart(g) {
    const evs = [];
    for (const x of g.items) for (const loc of x.f.locations) {
      const im = loc.image;
      if (!im) continue;
      evs.push({ layer: im.layer, kind: "added", where: place(loc) });
      if (im.removed_in) evs.push({ layer: im.removed_in, kind: im.overwritten ? "overwritten" : "deleted", where: place(loc), still: true });
    }
    if (!evs.length) return null;
    evs.sort((a, b) => a.layer - b.layer);
    const top = Math.max(...evs.map((e) => e.layer));
    const still = evs.some((e) => e.still);
    const W = 600, L = 20, R = 580;
    const x = (n) => (top <= 1 ? L : L + ((n - 1) / (top - 1)) * (R - L));
    const label = `layers of ${g.subject}: ` + evs.map((e) => `${e.kind} in layer ${e.layer}`).join(", ") + (still ? "; still in the image" : "");
    const svg = s("svg", { viewBox: `0 0 ${W} 62`, width: W, height: 62, role: "img", class: "layers", "aria-label": label },
      s("line", { class: "axis", x1: L, x2: R, y1: 30, y2: 30 }));
    if (still) svg.append(s("rect", { class: "history", x: x(Math.min(...evs.filter((e) => e.still).map((e) => e.layer))), y: 20, width: 3 + R - x(Math.min(...evs.filter((e) => e.still).map((e) => e.layer))), height: 20 }));
    for (let n = 1; n <= top; n++) svg.append(s("text", { x: x(n), y: 56, "text-anchor": "middle" }, "layer " + n));
    for (const e of evs) {
      const mark = e.kind === "added" ? s("circle", { class: "ev-introduced", cx: x(e.layer), cy: 30, r: 7 })
        : s("rect", { class: "ev-removed", x: x(e.layer) - 6, y: 24, width: 12, height: 12 });
      mark.append(s("title", {}, `${e.kind} in layer ${e.layer}: ${e.where}`));
      svg.append(mark);
    }
    return h("div", { class: "timeline-block" }, h("h4", null, "Image layers"), svg,
      h("ol", { class: "events" }, evs.map((e) => h("li", null, h("strong", null, e.kind), ` in layer ${e.layer} · ${e.where}`)),
        still ? h("li", null, h("strong", null, "still in the image"), " · a later layer hides the file, but anyone who pulls the image can read it") : null));
  }
  function locationItem(loc) {
    const where = place(loc) + (loc.origin && loc.origin.length ? "" : ":" + loc.line);
    const link = loc.href ? h("a", { href: loc.href, rel: "noreferrer noopener" }, where) : h("span", null, where);
    const notes = [];
    if (loc.git) {
      const g = loc.git;
      notes.push(` — commit ${String(g.commit || "?").slice(0, 10)}${g.date ? " " + day(g.date) : ""}${g.author ? " by " + g.author : ""}`);
      if (g.removed_in) notes.push(`, deleted in ${g.removed_in.slice(0, 10)} ${day(g.removed_date)}`);
      if (g.removed_from_head) notes.push(" (still in history)");
    }
    if (loc.image) {
      const im = loc.image;
      notes.push(` — added in layer ${im.layer}` + (im.removed_in ? `, ${im.overwritten ? "overwritten" : "deleted"} in layer ${im.removed_in}: still in the image` : ""));
    }
    if (loc.captured) notes.push(` — page captured ${day(loc.captured)}`);
    if (loc.seen) notes.push(` — first seen ${day(loc.seen.first)}, last seen ${day(loc.seen.last)}${loc.seen.present ? "" : " (no longer there)"}`);
    // the secret itself: in the data only under --show-secrets (the header says so)
    const secret = D.secrets_shown && loc.secret ? h("div", { class: "secret" }, "secret: ", h("code", null, loc.secret)) : null;
    return h("li", null, link, notes.join(""), loc.snippet ? h("div", null, h("code", null, loc.snippet)) : null, secret);
  }
  function credential(x) {
    const a = x.a, f = x.f;
    const facts = h("dl", { class: "facts" });
    const add = (k, ...v) => facts.append(h("dt", null, k), h("dd", null, ...v));
    add("Credential", `${a.kind_label} `, h("code", null, f.redacted), " ", sevBadge(x.sev));
    if (a.services && a.services.length) add("Services", a.services.join(", "));
    if (a.scope) add("Scope", a.scope);
    if (a.capabilities && a.capabilities.length) {
      add("Permissions", a.permissions ? h("code", null, a.permissions) : null,
        h("ul", { class: "perm" }, a.capabilities.map((c) => h("li", null, h("strong", null, `${c.letter} ${c.name}`), `: ${c.meaning}`))));
    } else if (a.permissions) add("Permissions", a.permissions);
    if (a.destructive && a.destructive.length) add("Destructive", h("span", { class: "destructive" }, a.destructive.join(", ")));
    if (a.validity) add("Validity", a.validity.summary, validityBar(a.validity));
    if (a.network) add("Network", a.network);
    if (f.verification) add("Live check", f.verification);
    const inv = f.inventory; // from `keyscope inventory list --format html`
    if (inv) {
      add("Status", inv.status + (inv.status_at ? ` since ${day(inv.status_at)}` : ""));
      add("Seen", `first ${day(inv.first_seen)}, last ${day(inv.last_seen)}`);
    }
    const history = inv && inv.verifications.length ? h("div", null, h("h4", null, `Verification history (${inv.verifications.length})`),
      h("ol", { class: "events verifications" }, inv.verifications.map((v) => h("li", null, h("strong", null, v.status), ` ${day(v.checked_at)} · ${v.summary}`)))) : null;
    const triage = inv && inv.triage.length ? h("div", null, h("h4", null, "Triage"),
      h("ol", { class: "events" }, inv.triage.map((t) => h("li", null, h("strong", null, t.status), ` ${day(t.at)} by ${t.actor}${t.note ? ": " + t.note : ""}`)))) : null;
    return h("div", { class: "cred" },
      h("p", null, f.sentence), facts, history, triage,
      h("h4", null, `Where (${f.locations.length})`),
      h("ul", { class: "locations" }, f.locations.slice(0, 50).map(locationItem),
        f.locations.length > 50 ? h("li", null, `… and ${f.locations.length - 50} more`) : null));
  }
  function checklist(g) {
    const steps = [];
    const seen = new Set();
    for (const x of g.items) for (const st of x.a.revocation.steps) {
      const k = st.description + "\n" + (st.command || "");
      if (!seen.has(k)) { seen.add(k); steps.push(st); }
    }
    if (!steps.length) return null;
    const summ = [...new Set(g.items.map((x) => x.a.revocation.summary))].join(" ");
    return h("div", null, h("h4", null, "Revocation checklist"), h("p", null, summ),
      h("ol", { class: "checklist" }, steps.map((st, n) => {
        const id = `${g.id}-step-${n}`;
        const li = h("li", { class: checked.get(id) ? "done" : null });
        const box = h("input", { type: "checkbox", id, checked: checked.get(id) || null,
          onchange: (ev) => { checked.set(id, ev.target.checked); li.className = ev.target.checked ? "done" : ""; } });
        li.append(box, h("div", null, h("label", { for: id }, st.description), st.command ? h("pre", { class: "cmd" }, h("code", null, st.command)) : null));
        return li;
      })));
  }
  function card(g) {
    const items = g.items.filter(matches);
    const owners = new Map();
    for (const x of g.items) for (const o of x.f.owners) owners.set(o.name + (o.email || ""), o);
    const el = h("article", { class: "card lvl-" + g.sev, id: g.id, tabindex: "0", "aria-labelledby": g.id + "-h", "data-account": g.account || "" },
      h("header", null, h("h3", { id: g.id + "-h" }, g.account ? `Account ${g.account}` : g.title), sevBadge(g.sev),
        h("span", { class: "muted" }, `${g.provider} · ${g.items.length} credential${g.items.length > 1 ? "s" : ""}`)),
      owners.size ? h("p", null, h("strong", null, "Owners: "), [...owners.values()].map((o) => (o.email && o.email !== o.name ? `${o.name} <${o.email}>` : o.name)).join(", ")) : null,
      timelineChart(g),
      layerChart(g),
      items.map(credential),
      checklist(g));
    return el;
  }

  // ---- the list: rendered a page at a time ----
  let cardsEl, countEl, moreBtn, sentinel;
  function apply() {
    const t = performance.now();
    shown = allGroups.filter((g) => g.items.some(matches));
    rendered = 0;
    cardsEl.replaceChildren();
    renderMore();
    const n = findings.filter(matches).length;
    countEl.textContent = `showing ${n} of ${findings.length} credentials, ${shown.length} accounts`;
    renderModels();
    if (window.keyscopeReport) window.keyscopeReport.applyMs = performance.now() - t;
  }
  function renderMore(all) {
    const stop = all ? shown.length : Math.min(shown.length, rendered + PAGE);
    const frag = document.createDocumentFragment();
    for (; rendered < stop; rendered++) frag.append(h("div", { role: "listitem" }, card(shown[rendered])));
    cardsEl.append(frag);
    moreBtn.hidden = rendered >= shown.length;
    moreBtn.textContent = `Show more (${shown.length - rendered} left)`;
  }
  function moveFocus(ev) {
    if (!["ArrowDown", "ArrowUp", "j", "k"].includes(ev.key) || !ev.target.classList || !ev.target.classList.contains("card")) return;
    const cards = [...cardsEl.querySelectorAll("article.card")];
    const n = cards.indexOf(ev.target) + (ev.key === "ArrowDown" || ev.key === "j" ? 1 : -1);
    if (n >= cards.length && rendered < shown.length) { renderMore(); }
    const next = cardsEl.querySelectorAll("article.card")[n];
    if (next) { ev.preventDefault(); next.focus({ preventScroll: true }); next.scrollIntoView({ block: "start" }); }
  }

  // ---- model files ----
  let modelsBody, modelsMore, modelsShown = [], modelsRendered = 0;
  const models = (D.model_findings || []).map((m) => ({ m, text: [m.path, ...(m.where || []), m.verdict, m.sentence, ...(m.details || [])].join("\n").toLowerCase() }));
  function renderModels(more) {
    if (!modelsBody) return;
    if (!more) {
      modelsShown = models.filter(({ m, text }) => state.sev.has(m.severity) && (!state.path || [m.path, ...(m.where || [])].join("!/").toLowerCase().includes(state.path)) && (!state.q || text.includes(state.q)));
      modelsRendered = 0; modelsBody.replaceChildren();
    }
    const stop = Math.min(modelsShown.length, modelsRendered + 200);
    for (; modelsRendered < stop; modelsRendered++) {
      const m = modelsShown[modelsRendered].m;
      const where = [m.path, ...(m.where || [])].join("!/");
      modelsBody.append(h("tr", null,
        h("td", null, m.href ? h("a", { href: m.href, rel: "noreferrer noopener" }, where) : where),
        h("td", null, sevBadge(m.severity)), h("td", null, m.verdict),
        h("td", null, h("p", null, m.sentence), m.details && m.details.length ? h("ul", null, m.details.slice(0, 20).map((d) => h("li", null, h("code", null, d)))) : null)));
    }
    modelsMore.hidden = modelsRendered >= modelsShown.length;
  }

  // ---- the page ----
  function select(id, label, values) {
    const sel = h("select", { id }, h("option", { value: "" }, "all"), values.map((v) => h("option", { value: v }, v)));
    return [h("label", { class: "field", for: id }, label, sel), sel];
  }
  function build() {
    const app = document.getElementById("app");
    app.replaceChildren();
    app.append(summary());
    const providers = [...new Set(findings.map((x) => x.a.provider))].sort();
    const accounts = [...new Set(findings.map((x) => x.a.account).filter(Boolean))].sort();
    const [provLabel, provSel] = select("f-provider", "Provider", providers);
    const [acctLabel, acctSel] = select("f-account", "Account", accounts);
    const path = h("input", { type: "text", id: "f-path", placeholder: "part of a path", autocomplete: "off" });
    const q = h("input", { type: "search", id: "f-search", placeholder: "account, path, rule, owner…", autocomplete: "off" });
    countEl = h("p", { class: "count", role: "status", "aria-live": "polite", id: "f-count" });
    const sevBoxes = h("fieldset", null, h("legend", null, "Severity"), SEVERITIES.map((sv) => {
      const id = "f-sev-" + sv;
      return h("label", { for: id }, h("input", { type: "checkbox", id, value: sv, checked: true,
        onchange: (ev) => { ev.target.checked ? state.sev.add(sv) : state.sev.delete(sv); apply(); } }), " " + sv);
    }));
    let timer = 0;
    const later = () => { clearTimeout(timer); timer = setTimeout(apply, 120); };
    provSel.addEventListener("change", () => { state.provider = provSel.value; apply(); });
    acctSel.addEventListener("change", () => { state.account = acctSel.value; apply(); });
    path.addEventListener("input", () => { state.path = path.value.trim().toLowerCase(); later(); });
    q.addEventListener("input", () => { state.q = q.value.trim().toLowerCase(); later(); });
    const form = h("form", { class: "filters", role: "search", "aria-label": "Filter the findings", onsubmit: (ev) => { ev.preventDefault(); clearTimeout(timer); apply(); } },
      sevBoxes, provLabel, acctLabel, h("label", { class: "field", for: "f-path" }, "Path", path),
      h("label", { class: "field", for: "f-search" }, "Search", q), countEl);
    cardsEl = h("div", { class: "cards", role: "list", id: "cards", onkeydown: moveFocus });
    moreBtn = h("button", { type: "button", class: "more", onclick: () => renderMore() }, "Show more");
    sentinel = h("div", { "aria-hidden": "true" });
    app.append(h("section", { "aria-labelledby": "cards-heading" },
      h("h2", { id: "cards-heading", tabindex: "-1" }, "Accounts and credentials"), form,
      h("p", { class: "muted" }, "Each card is one account: what its credentials unlock, when they were committed, and how to revoke them. Tab to a card, then use the arrow keys (or j / k) to move between cards."),
      cardsEl, moreBtn, sentinel));
    if (models.length) {
      modelsBody = h("tbody");
      modelsMore = h("button", { type: "button", class: "more", onclick: () => renderModels(true) }, "Show more");
      app.append(h("section", { "aria-labelledby": "models-heading" }, h("h2", { id: "models-heading" }, "Model files"),
        h("p", { class: "muted" }, "Loading these files would run the code listed."),
        h("table", { class: "models" }, h("thead", null, h("tr", null, ["File", "Severity", "Verdict", "What would run"].map((c) => h("th", { scope: "col" }, c)))), modelsBody), modelsMore));
    }
    if ((D.skipped || []).length) {
      app.append(h("section", { "aria-labelledby": "skipped-heading" }, h("h2", { id: "skipped-heading" }, `Not scanned (${D.skipped.length})`),
        h("details", null, h("summary", null, "Files that were skipped, and why"),
          h("ul", null, D.skipped.slice(0, 1000).map((k) => h("li", null, h("code", null, k.path), ": " + k.reason))))));
    }
    if (!findings.length && !models.length) app.append(h("p", null, "Nothing found."));
    if ("IntersectionObserver" in window) {
      new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting) && rendered < shown.length) renderMore(); }, { rootMargin: "800px" }).observe(sentinel);
    }
    window.addEventListener("beforeprint", () => { renderMore(true); if (modelsBody) while (modelsRendered < modelsShown.length) renderModels(true); });
    apply();
  }
  build();
  document.body.dataset.ready = "1";
  window.keyscopeReport = { renderMs: performance.now() - t0, interactiveAt: performance.now(), apply, state };
})();
