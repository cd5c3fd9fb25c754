// The API gateway dashboard. Data: GET /api/gateway/stats/overview (every chart, the KPIs and
// the latest faults in one answer), live updates from the Server-Sent Events stream
// /api/gateway/stats/stream (read with fetch, so that the credential travels in the
// Authorization header: EventSource cannot send headers), polling and manual modes as
// fallbacks. The credential is asked for once per browser tab and kept in sessionStorage.
// Everything that comes from the log is inserted as text, never as HTML.
"use strict";
(() => {
  const KEY = "agw_dashboard_credential";
  const THEME_KEY = "agw_dashboard_theme";
  const MODE_KEY = "agw_dashboard_mode";
  const LIVE_MIN_INTERVAL_MS = 5000; // at most one refresh per 5 s in live mode
  const LIVE_SAFETY_MS = 60000; // and at least one per minute
  const $ = (id) => document.getElementById(id);

  // State, also exposed (read-only use) for the browser tests.
  const st = {
    charts: {},
    data: null,
    seen: new Set(),
    firstLoad: true,
    errorHigh: false,
    timer: null,
    stream: null,
    streamFailures: 0,
    lastRefresh: 0,
    refreshTimer: null,
    inFlight: null,
    again: false,
    liveEvents: 0,
    refreshes: 0,
  };
  window.agwDashboard = st;

  // ---------- helpers ----------
  const credential = () => sessionStorage.getItem(KEY) || "";
  const fmtInt = (n) => (n == null ? "–" : Number(n).toLocaleString());
  const fmtMs = (n) => (n == null ? "–" : `${Number(n).toLocaleString(undefined, { maximumFractionDigits: 1 })} ms`);
  const fmtPct = (r) => (r == null ? "–" : `${(Number(r) * 100).toLocaleString(undefined, { maximumFractionDigits: 1 })} %`);
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") e.className = v;
      else if (k === "dataset") Object.assign(e.dataset, v);
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
    return e;
  }

  class AuthError extends Error {}

  async function api(path, accept = "application/json") {
    const res = await fetch(path, {
      headers: { Authorization: `Bearer ${credential()}`, Accept: accept },
      cache: "no-store",
      credentials: "omit",
    });
    if (res.status === 401 || res.status === 403) {
      const body = await res.json().catch(() => ({}));
      throw new AuthError(body.detail || body.title || `HTTP ${res.status}`);
    }
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      throw new Error(body.detail || body.title || `HTTP ${res.status}`);
    }
    return res;
  }

  function filters() {
    const p = new URLSearchParams();
    p.set("range", $("range").value);
    if ($("user").value !== "") p.set("user", $("user").value);
    if ($("status").value !== "") p.set("status", $("status").value);
    return p.toString();
  }

  function toast(title, text, kind = "bad") {
    const t = el("div", { class: `toast ${kind}`, role: "status" }, el("b", {}, title), text);
    $("toasts").append(t);
    while ($("toasts").children.length > 5) $("toasts").firstChild.remove();
    setTimeout(() => t.remove(), 9000);
  }

  function setConn(state, text) {
    $("conn").dataset.state = state;
    $("conn").textContent = text;
  }

  // ---------- sign-in ----------
  function showLogin(message) {
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("credential").value = "";
    $("credential").focus();
    stopUpdates();
    setConn("off", "not connected");
  }

  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const value = $("credential").value.trim().replace(/^bearer\s+/i, "");
    if (!value) return;
    sessionStorage.setItem(KEY, value);
    $("login").hidden = true;
    await start();
  });

  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    showLogin("Signed out.");
  });

  // ---------- theme ----------
  function applyTheme(theme) {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem(THEME_KEY, theme);
    $("theme").value = theme;
    rebuildCharts();
  }
  $("theme").addEventListener("change", () => applyTheme($("theme").value));
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    if ($("theme").value === "auto") rebuildCharts();
  });

  // ---------- charts ----------
  function palette() {
    return {
      fg: css("--fg"), muted: css("--muted"), line: css("--line"), accent: css("--accent"), ok: css("--ok"),
      warn: css("--warn"), bad: css("--bad"), violet: css("--violet"), teal: css("--teal"),
    };
  }

  function baseOptions(p, extra = {}) {
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      plugins: { legend: { labels: { color: p.fg, boxWidth: 12 } }, tooltip: { enabled: true } },
      scales: {
        x: { ticks: { color: p.muted, maxRotation: 0, autoSkip: true }, grid: { color: p.line } },
        y: { beginAtZero: true, ticks: { color: p.muted, precision: 0 }, grid: { color: p.line } },
      },
      ...extra,
    };
  }

  function bucketLabel(t, bucket) {
    const d = new Date(t);
    const pad = (n) => String(n).padStart(2, "0");
    if (bucket === "hour") return `${pad(d.getHours())}:00`;
    if (bucket === "day") return `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}`;
  }

  // A doughnut with nothing to show draws a grey ring rather than nothing.
  function ring(values, colors, p) {
    const total = values.reduce((a, b) => a + Number(b || 0), 0);
    if (total === 0) return { data: [1], backgroundColor: [p.line], empty: true };
    return { data: values, backgroundColor: colors, empty: false };
  }

  function specs(d, p) {
    const endpointLabel = (e) => `${e.method} ${e.endpoint}`;
    const traffic = d.traffic || [];
    const wh = (d.kpis && d.kpis.webhooks) || {};
    const status = d.status || [];
    const methods = d.methods || [];
    const methodColors = [p.accent, p.ok, p.warn, p.bad, p.violet, p.teal, p.muted];
    const statusRing = ring(status.map((s) => s.requests), [p.ok, p.warn, p.bad, p.violet], p);
    const methodRing = ring(methods.map((m) => m.requests), methods.map((_, i) => methodColors[i % methodColors.length]), p);
    const score = d.health ? Number(d.health.score) : 100;
    const scoreColor = score >= 90 ? p.ok : score >= 70 ? p.warn : p.bad;
    const hbar = (labels, data, label, color) => ({
      type: "bar",
      data: { labels, datasets: [{ label, data, backgroundColor: color, borderRadius: 3 }] },
      options: baseOptions(p, {
        indexAxis: "y",
        plugins: { legend: { display: false } },
        scales: {
          x: { beginAtZero: true, ticks: { color: p.muted }, grid: { color: p.line } },
          y: { ticks: { color: p.fg, autoSkip: false, callback(v) { const s = this.getLabelForValue(v); return s.length > 34 ? `${s.slice(0, 33)}…` : s; } }, grid: { display: false } },
        },
      }),
    });
    return {
      "chart-traffic": {
        type: "line",
        data: {
          labels: traffic.map((b) => bucketLabel(b.t, d.bucket)),
          datasets: [
            { label: "requests", data: traffic.map((b) => b.requests), borderColor: p.accent, backgroundColor: p.accent, tension: 0.25, pointRadius: 2 },
            { label: "errors", data: traffic.map((b) => b.errors), borderColor: p.bad, backgroundColor: p.bad, tension: 0.25, pointRadius: 2 },
            { label: "rate-limited", data: traffic.map((b) => b.rate_limited), borderColor: p.violet, backgroundColor: p.violet, tension: 0.25, pointRadius: 2 },
          ],
        },
        options: baseOptions(p, { interaction: { mode: "index", intersect: false } }),
      },
      "chart-health": {
        type: "doughnut",
        data: { labels: ["score", ""], datasets: [{ data: [score, 100 - score], backgroundColor: [scoreColor, p.line], borderWidth: 0 }] },
        options: { responsive: true, maintainAspectRatio: false, animation: false, rotation: -90, circumference: 180, cutout: "72%", plugins: { legend: { display: false }, tooltip: { enabled: false } } },
      },
      "chart-top-endpoints": hbar((d.top_endpoints || []).map(endpointLabel), (d.top_endpoints || []).map((e) => e.requests), "requests", p.accent),
      "chart-slowest": hbar((d.slowest_endpoints || []).map(endpointLabel), (d.slowest_endpoints || []).map((e) => Math.round(e.avg_latency_ms * 10) / 10), "average ms", p.warn),
      "chart-top-ips": {
        type: "bar",
        data: {
          labels: (d.top_ips || []).map((i) => i.client_ip),
          datasets: [
            { label: "requests", data: (d.top_ips || []).map((i) => i.requests), backgroundColor: p.teal, borderRadius: 3 },
            { label: "errors", data: (d.top_ips || []).map((i) => i.errors), backgroundColor: p.bad, borderRadius: 3 },
          ],
        },
        options: baseOptions(p),
      },
      "chart-latency": {
        type: "bar",
        data: { labels: (d.latency || []).map((l) => l.range), datasets: [{ label: "requests", data: (d.latency || []).map((l) => l.requests), backgroundColor: [p.ok, p.teal, p.accent, p.warn, p.bad], borderRadius: 3 }] },
        options: baseOptions(p, { plugins: { legend: { display: false } } }),
      },
      "chart-methods": {
        type: "doughnut",
        data: { labels: methodRing.empty ? ["no traffic"] : methods.map((m) => m.method), datasets: [{ data: methodRing.data, backgroundColor: methodRing.backgroundColor, borderWidth: 1, borderColor: css("--card") }] },
        options: { responsive: true, maintainAspectRatio: false, animation: false, plugins: { legend: { position: "right", labels: { color: p.fg, boxWidth: 12 } } } },
      },
      "chart-status": {
        type: "doughnut",
        data: { labels: statusRing.empty ? ["no traffic"] : status.map((s) => s.class), datasets: [{ data: statusRing.data, backgroundColor: statusRing.backgroundColor, borderWidth: 1, borderColor: css("--card") }] },
        options: { responsive: true, maintainAspectRatio: false, animation: false, plugins: { legend: { position: "right", labels: { color: p.fg, boxWidth: 12 } } } },
      },
      "chart-webhooks": {
        type: "bar",
        data: {
          labels: ["pending", "failed (retrying)", "dead", "delivered"],
          datasets: [{ label: "jobs", data: [wh.pending || 0, wh.failed || 0, wh.dead || 0, wh.delivered || 0], backgroundColor: [p.accent, p.warn, p.bad, p.ok], borderRadius: 3 }],
        },
        options: baseOptions(p, { plugins: { legend: { display: false } } }),
      },
    };
  }

  function renderCharts(d) {
    if (!window.Chart) return;
    const p = palette();
    const all = specs(d, p);
    for (const [id, spec] of Object.entries(all)) {
      const existing = st.charts[id];
      if (existing && existing.config.type === spec.type) {
        existing.data.labels = spec.data.labels;
        existing.data.datasets = spec.data.datasets;
        existing.update("none");
      } else {
        if (existing) existing.destroy();
        st.charts[id] = new window.Chart($(id), spec);
      }
    }
    const h = d.health || {};
    $("health-value").textContent = h.score == null ? "–" : String(h.score);
    $("health-value").title = `error rate ${fmtPct(h.error_rate)}, p95 ${fmtMs(h.p95_ms)}`;
  }

  function rebuildCharts() {
    for (const c of Object.values(st.charts)) c.destroy();
    st.charts = {};
    if (st.data) renderCharts(st.data);
  }

  // ---------- KPIs ----------
  function renderKpis(d) {
    const k = d.kpis || {};
    const wh = k.webhooks || {};
    const cards = [
      ["Requests", fmtInt(k.total_requests)],
      ["Requests / s", k.rps == null ? "–" : Number(k.rps) < 10 ? Number(k.rps).toLocaleString(undefined, { maximumSignificantDigits: 3 }) : Number(k.rps).toLocaleString(undefined, { maximumFractionDigits: 1 })],
      ["Error rate", fmtPct(k.error_rate), Number(k.error_rate) > 0.1],
      ["Rate-limited", fmtInt(k.rate_limited)],
      ["p50 latency", fmtMs(k.p50_latency_ms)],
      ["p95 latency", fmtMs(k.p95_latency_ms)],
      ["Average latency", fmtMs(k.avg_latency_ms)],
      ["Health score", d.health ? String(d.health.score) : "–", d.health && d.health.score < 70],
      ["Active users", fmtInt(k.active_users)],
      ["Active clients", fmtInt(k.active_clients)],
      ["Active tokens", fmtInt(k.active_tokens)],
      ["Throttled subjects", fmtInt(k.throttled_subjects)],
      ["Webhooks delivered", fmtInt(wh.delivered)],
      ["Webhooks failed / dead", `${fmtInt(wh.failed)} / ${fmtInt(wh.dead)}`, Number(wh.dead) > 0],
    ];
    $("kpis").replaceChildren(
      ...cards.map(([label, value, bad]) =>
        el("div", { class: `card kpi${bad ? " bad" : ""}`, dataset: { kpi: label } }, el("div", { class: "label" }, label), el("div", { class: "value" }, value)),
      ),
    );
    const level = d.front_log_level || d.log_level;
    const note = $("level-note");
    if (level === "errors") {
      note.hidden = false;
      note.textContent =
        "The traffic log level is 'errors': only failed requests are recorded, so totals, rates and latencies count failures only. " +
        "Set api_gateway.settings.log_level to 'metadata' to see all traffic.";
    } else {
      note.hidden = true;
    }
  }

  // ---------- fault feed ----------
  function userName(uid) {
    if (uid == null) return "anonymous";
    const opt = $("user").querySelector(`option[value="${Number(uid)}"]`);
    return opt ? opt.textContent : `uid ${uid}`;
  }

  function renderFaults(d) {
    const rows = d.faults || [];
    const fresh = [];
    const body = $("faults").tBodies[0];
    body.replaceChildren(
      ...rows.map((f) => {
        const isNew = !st.firstLoad && !st.seen.has(f.id);
        if (isNew) fresh.push(f);
        const cls = f.status === 429 ? "s429" : f.status >= 500 ? "s5" : "s4";
        const tr = el(
          "tr",
          { class: isNew ? "new" : "", dataset: { id: String(f.id), at: f.at, status: String(f.status) } },
          el("td", {}, new Date(f.at).toLocaleString()),
          el("td", {}, f.method),
          el("td", { class: "path" }, f.path),
          el("td", { class: `status ${cls}` }, f.status),
          el("td", {}, fmtMs(f.latency_ms)),
          el("td", {}, userName(f.uid)),
          el("td", {}, f.client_ip || ""),
          el("td", { class: "err" }, f.error || ""),
        );
        tr.addEventListener("click", () => inspect(f.id, f.at));
        return tr;
      }),
    );
    for (const f of rows) st.seen.add(f.id);
    $("faults-empty").hidden = rows.length > 0;
    const fives = fresh.filter((f) => f.status >= 500);
    if (fives.length > 0) {
      const f = fives[0];
      toast(`${fives.length > 1 ? `${fives.length} server errors` : "Server error"} (${f.status})`, `${f.method} ${f.path}: ${f.error || ""}`);
    }
  }

  // A toast when the error rate passes 10 %: the current bucket's rate when it has traffic
  // enough, else the range's (not at the 'errors' level, where only failures are counted).
  function checkErrorRate(d) {
    if ((d.front_log_level || d.log_level) === "errors") return;
    const buckets = d.traffic || [];
    const last = buckets[buckets.length - 1];
    let rate = d.kpis ? Number(d.kpis.error_rate) : 0;
    let where = "in this range";
    if (last && last.requests >= 10) {
      rate = last.errors / last.requests;
      where = "in the current period";
    }
    const high = rate > 0.1;
    if (high && !st.errorHigh) toast("Error rate above 10 %", `${fmtPct(rate)} of requests failed ${where}.`, "warn");
    st.errorHigh = high;
  }

  async function inspect(id, at) {
    const dlg = $("inspect");
    $("inspect-title").textContent = `Log record ${id}`;
    $("inspect-body").replaceChildren(el("dt", {}, "loading"), el("dd", {}, "…"));
    if (!dlg.open) dlg.showModal();
    try {
      const res = await api(`/api/gateway/stats/log/${encodeURIComponent(id)}?at=${encodeURIComponent(at)}`);
      const r = await res.json();
      const order = ["id", "at", "method", "path", "status", "latency_ms", "model", "record_id", "uid", "client_id", "client_ip", "user_agent",
        "request_bytes", "response_bytes", "error", "error_chain", "request_body", "response_body"];
      const keys = [...order.filter((k) => k in r), ...Object.keys(r).filter((k) => !order.includes(k))];
      $("inspect-body").replaceChildren(
        ...keys.flatMap((k) => {
          let v = r[k];
          if (v == null || v === "") return [el("dt", {}, k), el("dd", { class: "muted", dataset: { field: k } }, "—")];
          const long = typeof v === "string" && (k.endsWith("_body") || k === "error_chain" || v.length > 120);
          let text = typeof v === "object" ? JSON.stringify(v, null, 2) : String(v);
          if (k.endsWith("_body") && text) {
            try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* not JSON: as stored */ }
          }
          return [el("dt", {}, k), el("dd", { dataset: { field: k } }, long ? el("pre", {}, text) : text)];
        }),
      );
    } catch (e) {
      $("inspect-body").replaceChildren(el("dt", {}, "error"), el("dd", {}, e.message));
      if (e instanceof AuthError) showLogin(e.message);
    }
  }
  $("inspect-close").addEventListener("click", () => $("inspect").close());

  $("csv").addEventListener("click", async () => {
    try {
      const res = await api(`/api/gateway/stats/faults.csv?${filters()}`, "text/csv");
      const blob = await res.blob();
      const a = el("a", { href: URL.createObjectURL(blob), download: `api-gateway-faults-${$("range").value}.csv` });
      document.body.append(a);
      a.click();
      setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    } catch (e) {
      toast("CSV export failed", e.message, "warn");
      if (e instanceof AuthError) showLogin(e.message);
    }
  });

  // ---------- users ----------
  async function loadUsers() {
    try {
      const res = await api(`/api/gateway/stats/users?range=${encodeURIComponent($("range").value)}`);
      const { users } = await res.json();
      const sel = $("user");
      const current = sel.value;
      sel.replaceChildren(
        el("option", { value: "" }, "all users"),
        ...users.map((u) => el("option", { value: String(u.uid) }, u.login ? `${u.login} (${u.uid})` : `uid ${u.uid}`)),
      );
      if ([...sel.options].some((o) => o.value === current)) sel.value = current;
    } catch (e) {
      if (e instanceof AuthError) showLogin(e.message);
    }
  }

  // ---------- refresh ----------
  async function refresh() {
    if (!credential()) return showLogin();
    if (st.inFlight) {
      // Filters may have changed meanwhile: refresh once more when this one is done.
      st.again = true;
      return st.inFlight;
    }
    st.inFlight = (async () => {
      try {
        const res = await api(`/api/gateway/stats/overview?${filters()}`);
        const d = await res.json();
        st.data = d;
        st.lastRefresh = Date.now();
        st.refreshes += 1;
        renderKpis(d);
        renderCharts(d);
        renderFaults(d);
        checkErrorRate(d);
        st.firstLoad = false;
        $("updated").textContent = `Updated ${new Date().toLocaleTimeString()}.`;
        if ($("conn").dataset.state === "error") setConn(modeState(), modeText());
      } catch (e) {
        if (e instanceof AuthError) {
          sessionStorage.removeItem(KEY);
          showLogin(`Access refused: ${e.message}`);
        } else {
          setConn("error", "update failed");
          toast("Update failed", e.message, "warn");
        }
      } finally {
        st.inFlight = null;
      }
      if (st.again) {
        st.again = false;
        await refresh();
      }
    })();
    return st.inFlight;
  }

  // In live mode, coalesce the notifications: at most one refresh per LIVE_MIN_INTERVAL_MS.
  function scheduleRefresh() {
    if (st.refreshTimer) return;
    const wait = Math.max(0, st.lastRefresh + LIVE_MIN_INTERVAL_MS - Date.now());
    st.refreshTimer = setTimeout(() => {
      st.refreshTimer = null;
      refresh();
    }, wait);
  }

  // ---------- live stream ----------
  function handleEvent(chunk) {
    let event = "message";
    const data = [];
    for (const line of chunk.split("\n")) {
      if (line.startsWith(":")) continue;
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trim());
    }
    if (event === "hello") {
      st.streamFailures = 0;
      setConn("live", "live");
    } else if (event === "log") {
      st.liveEvents += 1;
      scheduleRefresh();
    }
  }

  async function openStream() {
    const ctrl = new AbortController();
    st.stream = ctrl;
    try {
      const res = await fetch("/api/gateway/stats/stream", {
        headers: { Authorization: `Bearer ${credential()}`, Accept: "text/event-stream" },
        cache: "no-store",
        credentials: "omit",
        signal: ctrl.signal,
      });
      if (res.status === 401 || res.status === 403) {
        const body = await res.json().catch(() => ({}));
        throw new AuthError(body.detail || `HTTP ${res.status}`);
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, "\n");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          handleEvent(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
    } catch (e) {
      if (ctrl.signal.aborted) return;
      if (e instanceof AuthError) return showLogin(e.message);
      st.streamFailures += 1;
    }
    if (st.stream !== ctrl || $("mode").value !== "live") return;
    // The stream ended (server restart, 15-minute limit, network): reconnect, and after three
    // failures in a row fall back to polling.
    if (st.streamFailures >= 3) {
      toast("Live updates unavailable", "Falling back to polling every 10 s.", "info");
      $("mode").value = "10";
      return startUpdates();
    }
    setConn("poll", "reconnecting…");
    setTimeout(() => {
      if (st.stream === ctrl && $("mode").value === "live") {
        refresh();
        openStream();
      }
    }, 1500 * (st.streamFailures + 1));
  }

  // ---------- modes ----------
  const modeState = () => ($("mode").value === "live" ? "live" : $("mode").value === "manual" ? "off" : "poll");
  const modeText = () => ($("mode").value === "live" ? "live" : $("mode").value === "manual" ? "manual" : `every ${$("mode").value} s`);

  function stopUpdates() {
    if (st.timer) clearInterval(st.timer);
    st.timer = null;
    if (st.stream) st.stream.abort();
    st.stream = null;
    if (st.refreshTimer) clearTimeout(st.refreshTimer);
    st.refreshTimer = null;
  }

  function startUpdates() {
    stopUpdates();
    const mode = $("mode").value;
    localStorage.setItem(MODE_KEY, mode);
    if (mode === "live") {
      setConn("poll", "connecting…");
      openStream();
      st.timer = setInterval(() => { if (Date.now() - st.lastRefresh >= LIVE_SAFETY_MS) refresh(); }, 5000);
    } else if (mode === "manual") {
      setConn("off", "manual");
    } else {
      setConn("poll", `every ${mode} s`);
      st.timer = setInterval(refresh, Number(mode) * 1000);
    }
  }

  async function start() {
    if (!credential()) return showLogin();
    $("login").hidden = true;
    await loadUsers();
    await refresh();
    if (credential()) startUpdates();
  }

  $("mode").addEventListener("change", startUpdates);
  $("refresh").addEventListener("click", () => refresh());
  for (const id of ["user", "status"]) {
    $(id).addEventListener("change", () => { st.firstLoad = true; refresh(); });
  }
  $("range").addEventListener("change", async () => { st.firstLoad = true; await loadUsers(); refresh(); });

  // ---------- boot ----------
  const savedTheme = localStorage.getItem(THEME_KEY);
  if (savedTheme) { document.documentElement.dataset.theme = savedTheme; $("theme").value = savedTheme; }
  const savedMode = localStorage.getItem(MODE_KEY);
  if (savedMode && [...$("mode").options].some((o) => o.value === savedMode)) $("mode").value = savedMode;
  start();
})();
