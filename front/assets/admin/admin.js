// The API gateway admin console: one page per menu of the product it replaces, rendered from
// the JSON API under /api/gateway/admin/api/ (each call one api_gateway.admin_* function).
// The credential is the dashboard's (sessionStorage, same tab) and travels only in the
// Authorization header: no cookie, so no CSRF. Everything that comes from the server is
// inserted as text, never as HTML. Secrets (client secret, webhook signing secret) are shown
// once in a dialog and dropped from memory when it closes.
"use strict";
(() => {
  const KEY = "agw_dashboard_credential";
  const THEME_KEY = "agw_dashboard_theme";
  const BASE = "/api/gateway/admin";
  const API = `${BASE}/api`;
  const $ = (id) => document.getElementById(id);
  const page = (location.pathname.replace(/\/+$/, "").split("/")[4] || "home");
  const params = new URLSearchParams(location.search);

  // For the browser tests: what the page is doing (never holds a secret).
  const st = { page, loads: 0, actions: 0, lastResult: null, timer: null };
  window.agwAdmin = st;

  // ---------- helpers ----------
  const credential = () => sessionStorage.getItem(KEY) || "";
  const fmtTime = (t) => (t ? new Date(t).toLocaleString() : "–");
  const fmtInt = (n) => (n == null ? "–" : Number(n).toLocaleString());

  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "dataset") Object.assign(e.dataset, v);
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v === true) e.setAttribute(k, "");
      else e.setAttribute(k, v);
    }
    for (const c of children.flat()) {
      if (c == null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  const badge = (text, cls = "") => el("span", { class: `badge ${cls}` }, text);
  const button = (text, onclick, cls = "", label = null) =>
    el("button", { type: "button", class: cls, onclick, "aria-label": label }, text);

  class AuthError extends Error {}
  class ProblemError extends Error {
    constructor(problem) {
      super(problem.detail || problem.title || "request failed");
      this.problem = problem;
    }
  }

  // One call of the console's API (or of the dashboard's stats API). Throws AuthError on
  // 401/403 (the sign-in form shows the reason) and ProblemError with the RFC 9457 body.
  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${credential()}`, Accept: "application/json" };
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path.startsWith("/") ? path : `${API}/${path}`, init);
    const type = res.headers.get("content-type") || "";
    const data = type.includes("json") ? await res.json() : await res.text();
    if (res.status === 401 || res.status === 403) {
      throw new AuthError((data && data.detail) || `HTTP ${res.status}`);
    }
    if (!res.ok) throw new ProblemError(typeof data === "object" ? data : { detail: String(data) });
    return data;
  }
  const get = (path) => api("GET", path);
  const post = (path, body) => api("POST", path, body);

  function toast(title, text, cls = "") {
    const t = el("div", { class: `toast ${cls}`, role: cls === "" ? "alert" : "status" }, el("b", {}, title), text);
    $("toasts").append(t);
    setTimeout(() => t.remove(), cls === "" ? 9000 : 5000);
  }

  function failed(e) {
    if (e instanceof AuthError) return signIn(e.message);
    toast("Failed", e.message);
  }

  // Runs a change, then re-renders the page; the server's answer goes to the toast.
  async function act(what, fn) {
    try {
      const r = await fn();
      st.actions += 1;
      st.lastResult = r;
      if (what) toast(what, "", "info");
      await render();
      return r;
    } catch (e) {
      failed(e);
      return null;
    }
  }

  // ---------- sign in, theme, navigation ----------
  function signIn(message = "") {
    $("login").hidden = false;
    $("login-error").textContent = message;
    $("credential").focus();
  }
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const value = $("credential").value.trim();
    if (!value) return;
    sessionStorage.setItem(KEY, value);
    $("credential").value = "";
    $("login").hidden = true;
    await render();
  });
  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    $("view").replaceChildren();
    signIn("");
  });
  function applyTheme(theme) {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem(THEME_KEY, theme);
    $("theme").value = theme;
  }
  $("theme").addEventListener("change", () => applyTheme($("theme").value));
  const savedTheme = localStorage.getItem(THEME_KEY);
  if (savedTheme) applyTheme(savedTheme);
  for (const a of document.querySelectorAll("#nav a[data-page]")) {
    if (a.dataset.page === page) a.setAttribute("aria-current", "page");
  }

  // ---------- dialogs ----------
  // A form in the dialog from a list of fields: {name, label, type, value, options, help,
  // required}. Resolves with the values on submit (after `save` accepted them) or null.
  function openForm(title, fields, save, submitText = "Save") {
    const dlg = $("form-dialog");
    $("form-title").textContent = title;
    $("dialog-submit").textContent = submitText;
    $("dialog-error").textContent = "";
    const box = $("dialog-fields");
    box.replaceChildren();
    const controls = {};
    for (const f of fields) {
      const id = `f-${f.name}`;
      let control;
      if (f.type === "select") {
        control = el("select", { id, name: f.name },
          f.options.map(([v, t]) => el("option", { value: v, selected: String(f.value ?? "") === String(v) }, t)));
      } else if (f.type === "textarea") {
        control = el("textarea", { id, name: f.name, rows: f.rows || 3, spellcheck: "false" });
        control.value = f.value ?? "";
      } else if (f.type === "checkbox") {
        control = el("input", { id, name: f.name, type: "checkbox", checked: !!f.value });
      } else if (f.type === "checkboxes") {
        control = el("fieldset", { id, "aria-label": f.label },
          f.options.map(([v, t]) => el("label", {},
            el("input", { type: "checkbox", name: f.name, value: v, checked: (f.value || []).includes(v) }), ` ${t}`)));
      } else {
        control = el("input", { id, name: f.name, type: f.type || "text", spellcheck: "false", list: f.list || null,
          min: f.min ?? null, max: f.max ?? null });
        control.value = f.value ?? "";
      }
      const err = el("span", { class: "field-error", id: `${id}-error` });
      if (f.type !== "checkboxes") control.setAttribute("aria-describedby", `${id}-error ${id}-help`);
      controls[f.name] = { f, control, err };
      box.append(el("label", { for: id }, f.label),
        el("div", { class: "control" }, control, f.help ? el("span", { class: "help", id: `${id}-help` }, f.help) : null, err));
    }
    const read = () => {
      const out = {};
      for (const [name, { f, control }] of Object.entries(controls)) {
        if (f.type === "checkbox") out[name] = control.checked;
        else if (f.type === "checkboxes") out[name] = [...control.querySelectorAll("input:checked")].map((i) => i.value);
        else out[name] = control.value;
      }
      return out;
    };
    return new Promise((resolve) => {
      const form = $("dialog-form");
      const done = (v) => {
        form.onsubmit = null;
        for (const b of dlg.querySelectorAll("[data-close]")) b.onclick = null;
        dlg.close();
        resolve(v);
      };
      for (const b of dlg.querySelectorAll("[data-close]")) b.onclick = () => done(null);
      dlg.oncancel = () => resolve(null);
      form.onsubmit = async (ev) => {
        ev.preventDefault();
        for (const { control, err } of Object.values(controls)) { err.textContent = ""; control.removeAttribute("aria-invalid"); }
        $("dialog-error").textContent = "";
        const values = read();
        try {
          const r = await save(values);
          done(r === undefined ? values : r);
        } catch (e) {
          if (e instanceof AuthError) { done(null); return signIn(e.message); }
          const field = e.problem && e.problem.field;
          if (field && controls[field]) {
            controls[field].err.textContent = e.message;
            controls[field].control.setAttribute("aria-invalid", "true");
            controls[field].control.focus();
          } else {
            $("dialog-error").textContent = e.message;
          }
        }
      };
      dlg.showModal();
      const first = box.querySelector("input, select, textarea");
      if (first) first.focus();
    });
  }

  // The one time a secret is visible: a dialog with a copy button; closing it forgets it.
  function showSecret(title, note, facts, secret) {
    return new Promise((resolve) => {
      const dlg = $("secret-dialog");
      $("secret-title").textContent = title;
      $("secret-note").textContent = note;
      $("secret-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { class: "mono" }, v)]));
      $("secret-value").textContent = secret;
      $("secret-copied").textContent = "";
      $("secret-copy").onclick = async () => {
        try {
          await navigator.clipboard.writeText($("secret-value").textContent);
          $("secret-copied").textContent = "Copied to the clipboard.";
        } catch {
          const r = document.createRange();
          r.selectNodeContents($("secret-value"));
          const s = getSelection(); s.removeAllRanges(); s.addRange(r);
          $("secret-copied").textContent = "Selected: press Ctrl+C (or Cmd+C) to copy.";
        }
      };
      const close = () => {
        $("secret-value").textContent = "";
        $("secret-facts").replaceChildren();
        dlg.close();
        resolve();
      };
      $("secret-done").onclick = close;
      dlg.oncancel = (ev) => { ev.preventDefault(); close(); };
      dlg.showModal();
      $("secret-copy").focus();
    });
  }

  function confirmAction(text) {
    return window.confirm(text);
  }

  const lines = (v) => (v || []).join("\n");
  const splitList = (s) => s.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);

  function table(headers, rows, empty) {
    if (!rows.length) return el("p", { class: "muted" }, empty);
    return el("div", { class: "table-wrap" },
      el("table", { class: "data" },
        el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", class: h.startsWith("~") ? "hide-narrow" : null }, h.replace(/^~/, ""))))),
        el("tbody", {}, rows)));
  }

  function head(title, text, ...buttons) {
    return el("div", { class: "page-head" }, el("div", {}, el("h2", {}, title), text ? el("p", {}, text) : null),
      el("div", { class: "row-actions" }, buttons));
  }

  // ---------- pages ----------
  const pages = {};

  pages.home = async () => {
    const audit = await get("audit?limit=20");
    const links = [
      ["logs", "Traffic Logs", "Filter, group, open and export the request log."],
      ["settings", "Settings", "Limits, rate-limit window, log level, retention, token lifetime, signing key."],
      ["profiles", "API Profiles", "Per-user rate limits, allowed IPs, on/off."],
      ["clients", "OAuth2 Clients", "Create clients, scopes, IPs, rotate secrets."],
      ["tokens", "OAuth2 Tokens", "Issued tokens; revoke one or all of a client's."],
      ["throttles", "Active Throttles", "Current rate-limit windows, live; reset one."],
      ["webhooks", "Webhooks", "Outbound events per model; test them."],
      ["queue", "Webhook Queue", "Jobs by state; replay dead ones."],
    ];
    return [
      head("Admin console", "Everything the gateway's configuration tables hold, without SQL."),
      el("div", { class: "cards" },
        el("a", { class: "card", href: "/api/gateway/dashboard" }, el("b", {}, "Dashboard"), el("span", {}, "Charts, KPIs and the live fault feed.")),
        links.map(([p, t, d]) => el("a", { class: "card", href: `${BASE}/${p}` }, el("b", {}, t), el("span", {}, d)))),
      el("section", { class: "card section" }, el("h3", {}, "Latest changes (audit)"),
        table(["When", "Actor", "Action", "Target", "Details"], audit.map((a) => el("tr", {},
          el("td", {}, fmtTime(a.at)),
          el("td", {}, a.actor_uid != null ? `user ${a.actor_uid}${a.actor_client ? ` via ${a.actor_client}` : ""}` : a.actor_role),
          el("td", { class: "mono" }, a.action), el("td", { class: "mono" }, a.target || ""),
          el("td", { class: "mono" }, JSON.stringify(a.details)))), "No change recorded yet.")),
    ];
  };

  pages.settings = async () => {
    const s = await get("settings");
    const fields = [
      { name: "default_limit", label: "Default page size", type: "number", min: 1, max: 10000, value: s.default_limit, help: "Records per page when the caller gives no limit (1 to 10,000)." },
      { name: "max_limit", label: "Maximum page size", type: "number", min: 1, max: 100000, value: s.max_limit, help: "Largest limit a caller may ask for (1 to 100,000)." },
      { name: "rate_limit", label: "Global rate limit", type: "number", min: 0, value: s.rate_limit, help: "Requests per window for users without a profile; 0 = unlimited." },
      { name: "rate_limit_window", label: "Window", type: "select", value: s.rate_limit_window, options: [["minute", "minute"], ["hour", "hour"], ["day", "day"]] },
      { name: "log_level", label: "Log level", type: "select", value: s.log_level, options: [["errors", "errors only"], ["metadata", "metadata of every request"], ["payloads", "metadata and bodies (redacted)"]] },
      { name: "log_retention_days", label: "Log retention (days)", type: "number", min: 1, max: 3650, value: s.log_retention_days },
      { name: "token_lifetime_s", label: "Token lifetime (s)", type: "number", min: 60, max: 2592000, value: s.token_lifetime_s, help: "Lifetime of new OAuth2 access tokens (60 s to 30 days)." },
      { name: "jwt_issuer", label: "JWT issuer", type: "text", value: s.jwt_issuer },
    ];
    const form = el("form", { class: "card section settings-form", novalidate: true, id: "settings-form" });
    const box = el("div", { class: "fields" });
    const controls = {};
    for (const f of fields) {
      const id = `s-${f.name}`;
      const control = f.type === "select"
        ? el("select", { id, name: f.name }, f.options.map(([v, t]) => el("option", { value: v, selected: v === f.value }, t)))
        : el("input", { id, name: f.name, type: f.type, min: f.min ?? null, max: f.max ?? null, "aria-describedby": `${id}-error` });
      if (f.type !== "select") control.value = f.value;
      const err = el("span", { class: "field-error", id: `${id}-error` });
      controls[f.name] = { control, err, f };
      box.append(el("label", { for: id }, f.label), el("div", { class: "control" }, control, f.help ? el("span", { class: "help" }, f.help) : null, err));
    }
    const formError = el("p", { class: "error", role: "alert" });
    form.append(el("h3", {}, "Gateway settings"), box, formError,
      el("div", { class: "actions" }, el("button", { type: "submit", class: "primary" }, "Save settings")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      formError.textContent = "";
      const changes = {};
      for (const [name, { control, err, f }] of Object.entries(controls)) {
        err.textContent = "";
        control.removeAttribute("aria-invalid");
        const v = control.value.trim();
        if (f.type === "number") {
          if (v === "" || !/^-?\d+$/.test(v)) { err.textContent = `${f.label} must be a whole number`; control.setAttribute("aria-invalid", "true"); control.focus(); return; }
          changes[name] = Number(v);
        } else changes[name] = v;
      }
      try {
        await post("settings", changes);
        st.actions += 1;
        toast("Settings saved", "", "info");
        await render();
      } catch (e) {
        if (e instanceof AuthError) return signIn(e.message);
        const field = e.problem && e.problem.field;
        if (field && controls[field]) {
          controls[field].err.textContent = e.message;
          controls[field].control.setAttribute("aria-invalid", "true");
          controls[field].control.focus();
        } else formError.textContent = e.message;
      }
    });
    const keys = el("section", { class: "card section" }, el("h3", {}, "JWT signing key"),
      el("p", {}, "Current key id: ", el("code", { id: "current-kid" }, s.jwt_kid)),
      el("p", { class: "muted" }, "Rotating signs new tokens with a new key; tokens signed with the old one keep working until they expire."),
      table(["Retired key", "Retired", "Verifies until"], s.retired_keys.map((k) => el("tr", {},
        el("td", { class: "mono" }, k.kid), el("td", {}, fmtTime(k.retired_at)), el("td", {}, fmtTime(k.valid_until)))), "No retired key still verifying."),
      el("div", { class: "actions" }, button("Rotate signing key", () => {
        if (!confirmAction("Sign new tokens with a new key? Existing tokens keep working until they expire.")) return;
        act("Signing key rotated", () => post("settings/rotate-key"));
      }, "danger")));
    const w = s.webhooks;
    const hooks = el("form", { class: "card section settings-form", novalidate: true, id: "webhook-settings-form" },
      el("h3", {}, "Webhook delivery"),
      el("div", { class: "fields" },
        el("label", { for: "w-private" }, "Private targets"),
        el("div", { class: "control" }, el("input", { id: "w-private", type: "checkbox", checked: w.allow_private_targets }),
          el("span", { class: "help" }, "Deliver to loopback and private addresses (10/8, 192.168/16, ...). Link-local and cloud metadata addresses are always refused.")),
        el("label", { for: "w-schedule" }, "Retry schedule (s)"),
        el("div", { class: "control" }, el("input", { id: "w-schedule", type: "text", value: (w.retry_schedule_s || []).join(", "), "aria-describedby": "w-schedule-error" }),
          el("span", { class: "help" }, "Seconds before retry 1, 2, ...; empty = 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h."),
          el("span", { class: "field-error", id: "w-schedule-error" })),
        el("label", { for: "w-retention" }, "Keep delivered and dead jobs (days)"),
        el("div", { class: "control" }, el("input", { id: "w-retention", type: "number", min: 0, max: 3650, value: w.retention_days, "aria-describedby": "w-retention-error" }),
          el("span", { class: "field-error", id: "w-retention-error" }))),
      el("p", { class: "error", role: "alert", id: "w-error" }),
      el("div", { class: "actions" }, el("button", { type: "submit", class: "primary" }, "Save delivery settings")));
    hooks.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      for (const id of ["w-schedule-error", "w-retention-error", "w-error"]) $(id).textContent = "";
      const schedule = splitList($("w-schedule").value);
      const retention = $("w-retention").value.trim();
      const changes = {
        allow_private_targets: $("w-private").checked,
        retry_schedule_s: schedule.length ? schedule.map((x) => (/^\d+$/.test(x) ? Number(x) : x)) : null,
        retention_days: /^\d+$/.test(retention) ? Number(retention) : retention,
      };
      try {
        await post("settings/webhooks", changes);
        st.actions += 1;
        toast("Delivery settings saved", "", "info");
        await render();
      } catch (e) {
        if (e instanceof AuthError) return signIn(e.message);
        const target = { retry_schedule_s: "w-schedule-error", retention_days: "w-retention-error" }[e.problem && e.problem.field] || "w-error";
        $(target).textContent = e.message;
      }
    });
    return [head("Settings", `Last changed ${fmtTime(s.updated_at)}.`), form, keys, hooks];
  };

  let usersCache = null;
  async function users() {
    if (!usersCache) usersCache = await get("users");
    return usersCache;
  }
  const userOptions = (list) => list.map((u) => [String(u.id), `${u.name || u.login} (${u.login}, id ${u.id})`]);
  const userLabel = (id, login) => (login ? `${login} (${id})` : `user ${id}`);

  pages.profiles = async () => {
    const [list, us] = await Promise.all([get("profiles"), users()]);
    const edit = async (p) => {
      const r = await openForm(p ? `Profile of ${userLabel(p.user_id, p.login)}` : "New API profile", [
        p ? null : { name: "user_id", label: "Odoo user", type: "select", options: userOptions(us), help: "Active Odoo users." },
        { name: "rate_limit", label: "Rate limit", type: "number", min: 0, value: p && p.rate_limit != null ? p.rate_limit : "", help: "Requests per window; empty = the global limit, 0 = unlimited." },
        { name: "rate_limit_window", label: "Window", type: "select", value: p ? p.rate_limit_window : "minute", options: [["minute", "minute"], ["hour", "hour"], ["day", "day"]] },
        { name: "allowed_ips", label: "Allowed IPs", type: "textarea", value: p ? lines(p.allowed_ips) : "", help: "One address or CIDR range per line (e.g. 10.0.0.0/8); empty = any address." },
        { name: "active", label: "Active", type: "checkbox", value: p ? p.active : true },
        { name: "note", label: "Note", type: "text", value: p ? p.note || "" : "" },
      ].filter(Boolean), (v) => post("profiles", {
        user_id: p ? p.user_id : Number(v.user_id),
        rate_limit: v.rate_limit.trim() === "" ? null : (/^\d+$/.test(v.rate_limit.trim()) ? Number(v.rate_limit) : v.rate_limit),
        rate_limit_window: v.rate_limit_window,
        allowed_ips: splitList(v.allowed_ips),
        active: v.active,
        note: v.note,
      }));
      if (r) { st.actions += 1; toast("Profile saved", "", "info"); await render(); }
    };
    return [
      head("API Profiles", "Per Odoo user: rate limit and window, allowed IPs, on/off. Users without a profile get the global limit.",
        button("New profile", () => edit(null), "primary")),
      el("div", { class: "card section" }, table(["User", "Rate limit", "Window", "Allowed IPs", "Active", "~Note", "Actions"], list.map((p) => el("tr", { dataset: { user: p.user_id } },
        el("td", {}, userLabel(p.user_id, p.login), p.user_active === false ? badge("archived in Odoo", "warn") : null),
        el("td", {}, p.rate_limit == null ? "global" : p.rate_limit === 0 ? "unlimited" : fmtInt(p.rate_limit)),
        el("td", {}, p.rate_limit_window),
        el("td", { class: "mono" }, (p.allowed_ips || []).join(", ") || "any"),
        el("td", {}, p.active ? badge("active", "ok") : badge("inactive", "bad")),
        el("td", { class: "hide-narrow" }, p.note || ""),
        el("td", {}, el("div", { class: "row-actions" },
          button("Edit", () => edit(p), "", `Edit the profile of ${userLabel(p.user_id, p.login)}`),
          p.active
            ? button("Deactivate", () => confirmAction(`Refuse every API request of ${userLabel(p.user_id, p.login)}?`) && act("Profile deactivated", () => post(`profiles/${p.user_id}/deactivate`)), "danger")
            : button("Activate", () => act("Profile activated", () => post(`profiles/${p.user_id}/activate`))),
          button("Delete", () => confirmAction(`Delete the profile of ${userLabel(p.user_id, p.login)}? The global limit applies again.`) && act("Profile deleted", () => post(`profiles/${p.user_id}/delete`)), "danger"),
          el("a", { href: `${BASE}/logs?user=${p.user_id}` }, "Traffic logs"))))), "No profile yet: every user gets the global limit.")),
    ];
  };

  const SCOPES = [["read", "read"], ["write", "write"], ["delete", "delete"], ["admin", "admin"]];

  pages.clients = async () => {
    const [list, us] = await Promise.all([get("clients"), users()]);
    const create = async () => {
      const r = await openForm("New OAuth2 client", [
        { name: "name", label: "Name", type: "text", help: "What integration this is, e.g. \"warehouse sync\"." },
        { name: "user_id", label: "Acts as Odoo user", type: "select", options: userOptions(us) },
        { name: "scopes", label: "Scopes", type: "checkboxes", options: SCOPES, value: ["read"] },
        { name: "allowed_ips", label: "Allowed IPs", type: "textarea", help: "One address or CIDR range per line; empty = any address." },
      ], (v) => post("clients", { name: v.name, user_id: Number(v.user_id), scopes: v.scopes, allowed_ips: splitList(v.allowed_ips) }), "Create client");
      if (!r) return;
      st.actions += 1;
      await showSecret("Client created", "Copy the secret now: it is shown this once and cannot be read again (rotate it if it is lost).",
        [["client_id", r.client_id]], r.client_secret);
      await render();
    };
    const edit = async (c) => {
      const r = await openForm(`Client ${c.client_id}`, [
        { name: "name", label: "Name", type: "text", value: c.name },
        { name: "scopes", label: "Scopes", type: "checkboxes", options: SCOPES, value: c.scopes },
        { name: "allowed_ips", label: "Allowed IPs", type: "textarea", value: lines(c.allowed_ips), help: "One address or CIDR range per line; empty = any address." },
        { name: "active", label: "Active", type: "checkbox", value: c.active },
      ], (v) => post(`clients/${encodeURIComponent(c.client_id)}`, { name: v.name, scopes: v.scopes, allowed_ips: splitList(v.allowed_ips), active: v.active }));
      if (r) { st.actions += 1; toast("Client saved", "", "info"); await render(); }
    };
    const rotate = async (c) => {
      if (!confirmAction(`Replace the secret of ${c.client_id}? The current secret stops working at once.`)) return;
      try {
        const r = await post(`clients/${encodeURIComponent(c.client_id)}/rotate-secret`);
        st.actions += 1;
        await showSecret("New client secret", "The old secret no longer works. Copy this one now: it is shown once. Tokens already issued stay valid until they expire or are revoked.",
          [["client_id", c.client_id]], r.client_secret);
        await render();
      } catch (e) { failed(e); }
    };
    return [
      head("OAuth2 Clients", "Client-credentials clients: each acts as one Odoo user with the scopes given.",
        button("New client", create, "primary")),
      el("div", { class: "card section" }, table(["Client id", "Name", "User", "Scopes", "~Allowed IPs", "Live tokens", "State", "Actions"], list.map((c) => el("tr", { dataset: { client: c.client_id } },
        el("td", { class: "mono" }, c.client_id), el("td", {}, c.name), el("td", {}, userLabel(c.user_id, c.login)),
        el("td", {}, c.scopes.join(" ")), el("td", { class: "mono hide-narrow" }, (c.allowed_ips || []).join(", ") || "any"),
        el("td", {}, el("a", { href: `${BASE}/tokens?client=${encodeURIComponent(c.client_id)}` }, fmtInt(c.live_tokens))),
        el("td", {}, c.active ? badge("active", "ok") : badge("inactive", "bad")),
        el("td", {}, el("div", { class: "row-actions" },
          button("Edit", () => edit(c), "", `Edit ${c.client_id}`),
          button("Rotate secret", () => rotate(c), "", `Rotate the secret of ${c.client_id}`),
          button("Revoke tokens", () => confirmAction(`Revoke every live token of ${c.client_id}?`) && act("Tokens revoked", () => post(`clients/${encodeURIComponent(c.client_id)}/revoke-tokens`)), "danger"),
          c.active
            ? button("Deactivate", () => confirmAction(`Deactivate ${c.client_id}? Its tokens stop working.`) && act("Client deactivated", () => post(`clients/${encodeURIComponent(c.client_id)}`, { active: false })), "danger")
            : button("Activate", () => act("Client activated", () => post(`clients/${encodeURIComponent(c.client_id)}`, { active: true }))),
          button("Delete", () => confirmAction(`Delete ${c.client_id} and its tokens? This cannot be undone.`) && act("Client deleted", () => post(`clients/${encodeURIComponent(c.client_id)}/delete`)), "danger"),
          el("a", { href: `${BASE}/logs?client=${encodeURIComponent(c.client_id)}` }, "Traffic logs"))))), "No OAuth2 client yet.")),
    ];
  };

  pages.tokens = async () => {
    const client = params.get("client") || "";
    const live = params.get("live") === "1";
    const [clients, tokens] = await Promise.all([get("clients"),
      get(`tokens?${new URLSearchParams({ client, all: live ? "false" : "true" })}`)]);
    const filter = el("form", { class: "toolbar", id: "tokens-filter" },
      el("label", {}, "Client", el("select", { name: "client" }, el("option", { value: "" }, "all clients"),
        clients.map((c) => el("option", { value: c.client_id, selected: c.client_id === client }, `${c.client_id} (${c.name})`)))),
      el("label", {}, "Live only", el("input", { type: "checkbox", name: "live", value: "1", checked: live })),
      el("button", { type: "submit" }, "Show"));
    filter.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const fd = new FormData(filter);
      const q = new URLSearchParams();
      if (fd.get("client")) q.set("client", fd.get("client"));
      if (fd.get("live")) q.set("live", "1");
      location.search = q.toString();
    });
    const stateBadge = { live: "ok", expired: "", revoked: "bad" };
    return [
      head("OAuth2 Tokens", "Issued access tokens, newest first (at most 500).",
        client ? button(`Revoke all of ${client}`, () => confirmAction(`Revoke every live token of ${client}?`) && act("Tokens revoked", () => post(`clients/${encodeURIComponent(client)}/revoke-tokens`)), "danger") : null),
      filter,
      el("div", { class: "card section" }, table(["Token id", "Client", "Scopes", "Issued", "Expires", "State", "Actions"], tokens.map((t) => el("tr", { dataset: { jti: t.jti } },
        el("td", { class: "mono" }, t.jti), el("td", {}, `${t.client_id} (${t.client_name})`), el("td", {}, t.scopes.join(" ")),
        el("td", {}, fmtTime(t.issued_at)), el("td", {}, fmtTime(t.expires_at)),
        el("td", {}, badge(t.state, stateBadge[t.state]), t.revoked_at ? ` ${fmtTime(t.revoked_at)}` : ""),
        el("td", {}, t.state === "live" ? button("Revoke", () => act("Token revoked", () => post(`tokens/${encodeURIComponent(t.jti)}/revoke`)), "danger", `Revoke token ${t.jti}`) : ""))),
        "No token issued.")),
    ];
  };

  pages.throttles = async () => {
    const list = await get("throttles");
    // Live: the page refreshes itself every 5 s while it is visible.
    clearTimeout(st.timer);
    st.timer = setTimeout(() => { if (document.visibilityState === "visible" && page === "throttles" && !document.querySelector("dialog[open]")) render(); }, 5000);
    return [
      head("Active Throttles", "Current rate-limit windows per subject (user or client), busiest first; refreshed every 5 s."),
      el("div", { class: "card section" }, table(["Subject", "Count", "Limit", "Remaining", "Resets in", "State", "Actions"], list.map((t) => el("tr", { dataset: { subject: t.subject } },
        el("td", { class: "mono" }, t.subject), el("td", {}, fmtInt(t.count)), el("td", {}, fmtInt(t.limit)), el("td", {}, fmtInt(t.remaining)),
        el("td", {}, `${t.reset_s} s`), el("td", {}, t.throttled ? badge("throttled", "bad") : badge("ok", "ok")),
        el("td", {}, button("Reset", () => act("Window reset", () => post("throttles/reset", { subject: t.subject })), "", `Reset the window of ${t.subject}`)))),
        "No active window.")),
    ];
  };

  pages.webhooks = async () => {
    const [list, models] = await Promise.all([get("webhooks"), get("models").catch(() => [])]);
    const datalist = el("datalist", { id: "models" }, models.map((m) => el("option", { value: m.model }, m.name)));
    const fields = (w) => [
      { name: "name", label: "Name", type: "text", value: w ? w.name : "" },
      { name: "model", label: "Model", type: "text", list: "models", value: w ? w.model : "", help: "An Odoo model (from ir_model), e.g. res.partner." },
      { name: "events", label: "Events", type: "checkboxes", options: [["create", "create"], ["write", "write"], ["unlink", "unlink"]], value: w ? w.events : ["create", "write", "unlink"] },
      { name: "url", label: "URL", type: "url", value: w ? w.url : "", help: "http(s)://host[:port]/path; put credentials in headers." },
      { name: "headers", label: "Headers", type: "textarea", value: w ? JSON.stringify(w.headers, null, 1) : "{}", help: "A JSON object of header names to values." },
      { name: "fields", label: "Fields", type: "text", value: w && w.fields ? w.fields.join(", ") : "", help: "Fields in the payload, comma-separated; empty = every stored field." },
      { name: "domain", label: "Domain filter", type: "text", value: w ? w.domain || "" : "", help: "An Odoo domain, e.g. [(\"is_company\", \"=\", True)]; empty = every record." },
      { name: "timeout_ms", label: "Timeout (ms)", type: "number", min: 100, max: 300000, value: w ? w.timeout_ms : 10000 },
      { name: "active", label: "Active", type: "checkbox", value: w ? w.active : true },
    ];
    const payload = (v) => {
      let headers;
      try { headers = JSON.parse(v.headers || "{}"); } catch {
        throw new ProblemError({ detail: "headers must be a JSON object, e.g. {\"Authorization\": \"Bearer ...\"}", field: "headers" });
      }
      return { name: v.name, model: v.model.trim(), events: v.events, url: v.url.trim(), headers, fields: v.fields, domain: v.domain,
        timeout_ms: /^\d+$/.test(v.timeout_ms) ? Number(v.timeout_ms) : v.timeout_ms, active: v.active };
    };
    const create = async () => {
      const r = await openForm("New webhook", fields(null), (v) => post("webhooks", payload(v)), "Create webhook");
      if (!r) return;
      st.actions += 1;
      await showSecret("Webhook created", "Give this signing secret to the receiver (Standard Webhooks): it is shown this once. Use \"New secret\" if it is lost.",
        [["webhook", `${r.id} (${r.name})`]], r.secret);
      await render();
    };
    const edit = async (w) => {
      const r = await openForm(`Webhook ${w.id}`, fields(w), (v) => post(`webhooks/${w.id}`, payload(v)));
      if (r) { st.actions += 1; toast("Webhook saved", "", "info"); await render(); }
    };
    const test = async (w) => {
      try {
        const r = await post(`webhooks/${w.id}/test`);
        st.actions += 1;
        st.lastResult = r;
        if (r.delivered) toast("Test event delivered", `${w.url} answered ${r.status}.`, "info");
        else toast("Test event failed", `${r.status ? `HTTP ${r.status}: ` : ""}${r.error || ""}`);
      } catch (e) { failed(e); }
    };
    const rotate = async (w) => {
      const r = await openForm(`New secret for webhook ${w.id}`, [
        { name: "overlap_hours", label: "Keep the old secret valid for (hours)", type: "number", min: 0, max: 720, value: 24,
          help: "During this overlap every delivery carries both signatures (v1,<new> v1,<old>), so the receiver can switch to the new secret without losing an event. 0: the old secret stops at once." },
      ], (v) => post(`webhooks/${w.id}/rotate-secret`, { overlap_hours: /^\d+(\.\d+)?$/.test(v.overlap_hours) ? Number(v.overlap_hours) : v.overlap_hours }), "Rotate secret");
      if (!r) return;
      st.actions += 1;
      await showSecret("New signing secret", `Events are signed with this secret from now on; it is shown this once. The old one stays valid for ${r.previous_secret_valid_s / 3600} h.`,
        [["webhook", `${w.id} (${w.name})`]], r.secret);
      await render();
    };
    const jobs = (j) => ["pending", "failed", "delivered", "dead"].filter((k) => j[k]).map((k) =>
      el("a", { href: `${BASE}/queue?webhook=${j._id}&state=${k}` }, badge(`${k} ${j[k]}`, k === "dead" ? "bad" : k === "failed" ? "warn" : k === "delivered" ? "ok" : "info")));
    return [
      datalist,
      head("Webhooks", "Changes to Odoo records POSTed to your endpoints, signed per Standard Webhooks.", button("New webhook", create, "primary")),
      el("div", { class: "card section" }, table(["Id", "Name", "Model", "Events", "URL", "Jobs", "State", "Actions"], list.map((w) => el("tr", { dataset: { webhook: w.id } },
        el("td", {}, w.id), el("td", {}, w.name), el("td", { class: "mono" }, w.model), el("td", {}, w.events.join(" ")),
        el("td", { class: "mono" }, w.url), el("td", {}, jobs({ ...w.jobs, _id: w.id })),
        el("td", {}, w.active ? badge("active", "ok") : badge("inactive", "bad"), w.disabled_reason ? el("div", { class: "muted" }, w.disabled_reason) : null,
          w.previous_secret_valid_until ? el("div", { class: "muted" }, `old secret valid until ${w.previous_secret_valid_until}`) : null),
        el("td", {}, el("div", { class: "row-actions" },
          button("Edit", () => edit(w), "", `Edit webhook ${w.name}`),
          button("Send test event", () => test(w), "", `Send a test event to ${w.name}`),
          w.active
            ? button("Deactivate", () => act("Webhook deactivated", () => post(`webhooks/${w.id}/deactivate`)), "danger")
            : button("Activate", () => act("Webhook activated", () => post(`webhooks/${w.id}/activate`))),
          button("New secret", () => rotate(w)),
          button("Delete", () => confirmAction(`Delete webhook ${w.name} and its queued jobs? This cannot be undone.`) && act("Webhook deleted", () => post(`webhooks/${w.id}/delete`)), "danger"),
          el("a", { href: `${BASE}/queue?webhook=${w.id}` }, "Queue"))))), "No webhook yet.")),
    ];
  };

  pages.queue = async () => {
    const state = params.get("state") || "";
    const webhook = params.get("webhook") || "";
    const q = new URLSearchParams();
    if (state) q.set("state", state);
    if (webhook) q.set("webhook", webhook);
    const [data, hooks] = await Promise.all([get(`queue?${q}`), get("webhooks")]);
    const filter = el("form", { class: "toolbar", id: "queue-filter" },
      el("label", {}, "State", el("select", { name: "state" }, [["", "all"], ["pending", "pending"], ["in_flight", "in flight"], ["failed", "failed (will retry)"], ["delivered", "delivered"], ["dead", "dead"]]
        .map(([v, t]) => el("option", { value: v, selected: v === state }, t)))),
      el("label", {}, "Webhook", el("select", { name: "webhook" }, el("option", { value: "" }, "all webhooks"),
        hooks.map((w) => el("option", { value: w.id, selected: String(w.id) === webhook }, `${w.id} ${w.name}`)))),
      el("button", { type: "submit" }, "Show"));
    filter.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const fd = new FormData(filter);
      const n = new URLSearchParams();
      for (const k of ["state", "webhook"]) if (fd.get(k)) n.set(k, fd.get(k));
      location.search = n.toString();
    });
    const counts = el("div", { class: "counts" }, Object.entries(data.counts).map(([k, v]) => badge(`${k}: ${fmtInt(v)}`, k === "dead" ? "bad" : k === "failed" ? "warn" : "")));
    return [
      head("Webhook Queue", "Events waiting, retrying, delivered or dead (newest first, at most 200).",
        webhook ? button("Replay all dead of this webhook", () => confirmAction("Send every dead event of this webhook again?") && act("Dead jobs replayed", () => post(`webhooks/${webhook}/replay-dead`)), "danger") : null),
      filter, counts,
      el("div", { class: "card section" }, table(["Job", "Webhook", "Event", "Record", "State", "Attempts", "Next attempt", "~Last status", "Last error", "Actions"], data.jobs.map((j) => el("tr", { dataset: { job: j.id } },
        el("td", {}, j.id), el("td", {}, j.webhook || j.webhook_id), el("td", {}, `${j.model || ""} ${j.action}`), el("td", {}, j.record_id ?? ""),
        el("td", {}, badge(j.status, j.status === "dead" ? "bad" : j.status === "failed" ? "warn" : j.status === "delivered" ? "ok" : "info")),
        el("td", {}, j.attempts), el("td", {}, j.status === "pending" || j.status === "failed" ? fmtTime(j.next_attempt_at) : "–"),
        el("td", { class: "hide-narrow" }, j.last_status ?? ""), el("td", { class: "mono" }, j.last_error || ""),
        el("td", {}, ["dead", "failed", "delivered"].includes(j.status)
          ? button("Replay", () => act("Job replayed", () => post(`queue/${j.id}/replay`)), "", `Replay job ${j.id}`) : ""))),
        "No job in this selection.")),
    ];
  };

  pages.logs = async () => {
    const f = {};
    for (const k of ["from", "to", "user", "client", "status", "path", "by"]) f[k] = params.get(k) || "";
    const q = new URLSearchParams();
    for (const k of ["from", "to", "user", "client", "status", "path"]) {
      if (!f[k]) continue;
      q.set(k, (k === "from" || k === "to") ? new Date(f[k]).toISOString() : f[k]);
    }
    const [us, clients, rows] = await Promise.all([users().catch(() => []), get("clients"),
      f.by ? get(`logs/grouped?${q}&by=${encodeURIComponent(f.by)}`) : get(`logs?${q}`)]);
    const input = (name, type, label) => el("label", {}, label, el("input", { name, type, value: f[name] }));
    const filter = el("form", { class: "toolbar", id: "logs-filter" },
      input("from", "datetime-local", "From"), input("to", "datetime-local", "To"),
      el("label", {}, "User", el("select", { name: "user" }, el("option", { value: "" }, "all"), el("option", { value: "0", selected: f.user === "0" }, "anonymous"),
        us.map((u) => el("option", { value: u.id, selected: String(u.id) === f.user }, u.login)))),
      el("label", {}, "Client", el("select", { name: "client" }, el("option", { value: "" }, "all"),
        clients.map((c) => el("option", { value: c.client_id, selected: c.client_id === f.client }, c.client_id)))),
      el("label", {}, "Status", el("select", { name: "status" }, ["", "2xx", "3xx", "4xx", "5xx", "429"].map((s) => el("option", { value: s, selected: s === f.status }, s || "all")))),
      input("path", "text", "Path contains"),
      el("label", {}, "Group by", el("select", { name: "by" }, [["", "no grouping"], ["date", "date"], ["user", "user"], ["status", "status"], ["endpoint", "endpoint"]]
        .map(([v, t]) => el("option", { value: v, selected: v === f.by }, t)))),
      el("button", { type: "submit", class: "primary" }, "Apply"),
      button("Export CSV", async () => {
        try {
          const res = await fetch(`${API}/logs.csv?${q}`, { headers: { Authorization: `Bearer ${credential()}` }, credentials: "omit", cache: "no-store" });
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          const url = URL.createObjectURL(await res.blob());
          const a = el("a", { href: url, download: "api-gateway-traffic.csv" });
          document.body.append(a); a.click(); a.remove();
          setTimeout(() => URL.revokeObjectURL(url), 10000);
        } catch (e) { toast("Export failed", e.message); }
      }));
    filter.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const fd = new FormData(filter);
      const n = new URLSearchParams();
      for (const [k, v] of fd.entries()) if (v) n.set(k, v);
      location.search = n.toString();
    });
    let body;
    if (f.by) {
      body = table([f.by, "Requests", "Errors", "Average latency"], rows.map((g) => el("tr", {},
        el("td", { class: "mono" }, f.by === "user" ? (g.key === "0" ? "anonymous" : userLabel(g.key, (us.find((u) => String(u.id) === g.key) || {}).login)) : g.key),
        el("td", {}, fmtInt(g.requests)), el("td", {}, fmtInt(g.errors)), el("td", {}, `${g.avg_latency_ms} ms`))), "No request matches.");
    } else {
      body = table(["Time", "Method", "Path", "Status", "Latency", "User", "~Client", "~Client IP", "~Error"], rows.map((r) => {
        const tr = el("tr", { class: "clickable", tabindex: "0", dataset: { log: r.id } },
          el("td", {}, fmtTime(r.at)), el("td", {}, r.method), el("td", { class: "path" }, r.path),
          el("td", { class: `status s${String(r.status)[0]}` }, r.status), el("td", {}, `${r.latency_ms} ms`),
          el("td", {}, r.uid ?? "–"), el("td", { class: "mono hide-narrow" }, r.client_id || ""),
          el("td", { class: "hide-narrow" }, r.client_ip || ""), el("td", { class: "err hide-narrow" }, r.error || ""));
        const open = () => inspect(r);
        tr.addEventListener("click", open);
        tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); open(); } });
        return tr;
      }), "No request matches (the level in Settings decides which requests are logged).");
    }
    return [head("Traffic Logs", "The request log, newest first (at most 200 rows; the CSV has up to 10,000). Click a row to open it."),
      filter, el("div", { class: "card section" }, body)];
  };

  async function inspect(r) {
    try {
      const rec = await get(`/api/gateway/stats/log/${r.id}?at=${encodeURIComponent(r.at)}`);
      $("inspect-title").textContent = `${rec.method} ${rec.path} → ${rec.status}`;
      $("inspect-body").replaceChildren(...Object.entries(rec).flatMap(([k, v]) => [el("dt", {}, k),
        el("dd", {}, v != null && typeof v === "object" ? el("pre", {}, JSON.stringify(v, null, 2)) : (k.endsWith("_body") || k === "error_chain") && v ? el("pre", {}, v) : String(v ?? "–"))]));
      $("inspect").showModal();
    } catch (e) { failed(e); }
  }
  $("inspect-close").addEventListener("click", () => $("inspect").close());

  // ---------- render ----------
  async function render() {
    if (!credential()) return signIn("");
    const fn = pages[page];
    const view = $("view");
    if (!fn) {
      view.replaceChildren(el("p", { class: "error" }, "No such page."));
      return;
    }
    try {
      const nodes = await fn();
      view.replaceChildren(...nodes.flat().filter(Boolean));
      view.dataset.loaded = String(++st.loads);
    } catch (e) {
      if (e instanceof AuthError) return signIn(e.message);
      view.replaceChildren(el("p", { class: "error", role: "alert" }, e.message));
    }
  }
  render();
})();
