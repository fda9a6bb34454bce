// Sluice dashboard: a thin client of the REST API (/v1/pipes...).
// Plain JS, no build step. Every value from the API reaches the page through
// textContent / text nodes (see `h`), never as HTML.
"use strict";

(() => {
  const TOKEN_KEY = "sluice.apiToken";
  const REFRESH_MS = 2000;
  const $ = (id) => document.getElementById(id);

  // ---------- DOM helpers ----------

  /** Creates an element. Strings and numbers among `children` become text nodes. */
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "value") el.value = v;
      else if (typeof v === "boolean") el[k] = v;
      else el.setAttribute(k, String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function badge(state) {
    const s = state == null ? "unknown" : String(state);
    return h("span", { class: "badge state-" + s.toLowerCase().replace(/[^a-z]/g, "") }, s);
  }

  function fmtInt(n) {
    return n == null ? "—" : Number(n).toLocaleString("en-US");
  }

  function fmtLag(sec) {
    if (sec == null) return "—";
    if (sec === 0) return "0 s (caught up)";
    if (sec < 60) return sec.toFixed(1) + " s";
    if (sec < 3600) return Math.floor(sec / 60) + " min " + Math.round(sec % 60) + " s";
    return Math.floor(sec / 3600) + " h " + Math.round((sec % 3600) / 60) + " min";
  }

  function fmtTime(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString();
  }

  function timeCell(iso) {
    return h("time", { datetime: iso || "", title: iso || "" }, fmtTime(iso));
  }

  /** Shows a message in a notice element: kind is "ok", "error" or "" (neutral). */
  function notice(el, text, kind) {
    el.textContent = text || "";
    el.className = "notice" + (kind ? " " + kind : "");
    el.hidden = !text;
  }

  // ---------- token ----------

  function getToken() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function askToken(reason) {
    const dlg = $("token-dialog");
    const r = $("token-reason");
    r.textContent = reason || "";
    r.hidden = !reason;
    $("token-input").value = "";
    if (!dlg.open) dlg.showModal();
    $("token-input").focus();
  }

  function onUnauthorized() {
    sessionStorage.removeItem(TOKEN_KEY);
    askToken(
      "The server answered 401 Unauthorized: the API token is missing or wrong. " +
        "Enter the token from <data-dir>/api-token (or SLUICE_API_TOKEN)."
    );
    showBanner("Not signed in: the API rejected the token (401 Unauthorized). Enter the API token to see and manage pipes.", "error");
  }

  // ---------- API ----------

  class ApiError extends Error {
    constructor(status, message, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  /** Calls the API with the bearer token. Resolves to the JSON answer (null when empty). */
  async function api(method, path, body) {
    const token = getToken();
    if (!token) {
      onUnauthorized();
      throw new ApiError(401, "No API token entered.", null);
    }
    const init = {
      method,
      headers: { Authorization: "Bearer " + token, Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, "Cannot reach the Sluice server (" + e.message + ").", null);
    }
    const text = await resp.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = text;
      }
    }
    if (resp.status === 401) {
      onUnauthorized();
      throw new ApiError(401, "401 Unauthorized: the API token is missing or wrong.", data);
    }
    if (!resp.ok) {
      let msg = (data && data.error) || (typeof data === "string" && data) || resp.statusText;
      if (data && data.state && !msg.includes(data.state)) msg += " (the pipe is " + data.state + ")";
      throw new ApiError(resp.status, resp.status + " " + resp.statusText + ": " + msg, data);
    }
    return data;
  }

  const enc = encodeURIComponent;
  const pipePath = (name) => "/v1/pipes/" + enc(name);

  // ---------- banner, refresh loop, routing ----------

  function showBanner(text, kind) {
    const b = $("banner");
    b.textContent = text || "";
    b.className = "banner" + (kind ? " " + kind : "");
    b.hidden = !text;
  }

  let view = null; // { refresh: async () => void } of the page shown
  let timer = null;
  let busy = false;
  let again = false; // a refresh was asked for while one was in flight

  async function tick() {
    clearTimeout(timer);
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      if (!getToken()) {
        showBanner("Not signed in: enter the API token (button “API token…” at the top right) to see and manage pipes.", "error");
      } else if (!document.hidden) {
        if (view && view.refresh) {
          await view.refresh();
          $("refresh-status").textContent = "updated " + new Date().toLocaleTimeString();
        }
        showBanner("");
      }
    } catch (e) {
      if (e.status !== 401) showBanner(e.message, "error");
    } finally {
      busy = false;
    }
    clearTimeout(timer);
    const auto = $("auto-refresh").checked;
    if (again) {
      again = false;
      timer = setTimeout(tick, 0);
    } else if (auto) {
      timer = setTimeout(tick, REFRESH_MS);
    } else {
      $("refresh-status").textContent = "auto-refresh off";
    }
  }

  /** Refreshes right away (after an action). */
  function refreshSoon() {
    tick();
  }

  let flash = null; // a message carried to the next view (e.g. "pipe deleted")

  function route() {
    const hash = location.hash || "#/";
    const main = $("main");
    main.replaceChildren();
    let m;
    if (hash === "#/new") view = createView(main);
    else if ((m = /^#\/pipe\/(.+)$/.exec(hash))) view = pipeView(main, decodeURIComponent(m[1]));
    else view = listView(main);
    document.querySelectorAll(".topbar nav a").forEach((a) => a.classList.toggle("active", a.getAttribute("href") === (hash === "#/new" ? "#/new" : "#/")));
    tick();
  }

  function takeFlash(el) {
    if (flash) notice(el, flash, "ok");
    flash = null;
  }

  // ---------- confirm dialog ----------

  /** Asks for confirmation; resolves to null when cancelled, else { checked }. */
  function confirmAction({ title, text, okLabel, checkLabel }) {
    const dlg = $("confirm-dialog");
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-ok").textContent = okLabel || "OK";
    $("confirm-option").hidden = !checkLabel;
    $("confirm-check-label").textContent = checkLabel || "";
    $("confirm-check").checked = false;
    return new Promise((resolve) => {
      const done = (result) => {
        $("confirm-form").removeEventListener("submit", onOk);
        $("confirm-cancel").removeEventListener("click", onCancel);
        dlg.removeEventListener("cancel", onCancel);
        dlg.close();
        resolve(result);
      };
      const onOk = (e) => {
        e.preventDefault();
        done({ checked: $("confirm-check").checked });
      };
      const onCancel = (e) => {
        e.preventDefault();
        done(null);
      };
      $("confirm-form").addEventListener("submit", onOk);
      $("confirm-cancel").addEventListener("click", onCancel);
      dlg.addEventListener("cancel", onCancel);
      dlg.showModal();
      $("confirm-cancel").focus();
    });
  }

  // ---------- pipe list ----------

  function listView(main) {
    const msg = h("div", { class: "notice", hidden: true });
    const tbody = h("tbody");
    const empty = h(
      "p",
      { class: "empty", hidden: true },
      "No pipes yet. ",
      h("a", { href: "#/new" }, "Create one"),
      " from a JSON spec."
    );
    main.append(
      h("div", { class: "section-head" }, h("h1", null, "Pipes"), h("span", { class: "spacer" }), h("a", { class: "button", href: "#/new" }, "New pipe")),
      msg,
      h(
        "table",
        { class: "grid" },
        h(
          "thead",
          null,
          h("tr", null, ["Name", "State", "Mode", "Tables", "Copy progress", "Lag", "Changes applied", "Last error", "Updated"].map((t) => h("th", null, t)))
        ),
        tbody
      ),
      empty
    );
    takeFlash(msg);

    async function refresh() {
      const pipes = await api("GET", "/v1/pipes");
      empty.hidden = pipes.length > 0;
      tbody.replaceChildren(
        ...pipes.map((p) => {
          const href = "#/pipe/" + enc(p.name);
          const errTables = p.tables.filter((t) => t.state === "Error").length;
          return h(
            "tr",
            { class: "clickable", onclick: (e) => { if (!e.target.closest("a")) location.hash = href; } },
            h("td", null, h("a", { href, class: "name" }, p.name)),
            h("td", null, badge(p.state)),
            h("td", { class: "muted" }, p.mode),
            h("td", { class: "num" }, String(p.tables.length), errTables ? h("span", { class: "badge state-error small" }, errTables + " in Error") : null),
            h("td", null, progressSummary(p.tables)),
            h("td", { class: "num" }, fmtLag(p.lag_seconds)),
            h("td", { class: "num" }, fmtInt(p.changes_applied)),
            h("td", { class: "error-cell", title: p.error || "" }, p.error || ""),
            h("td", { class: "muted" }, timeCell(p.updated_at))
          );
        })
      );
    }
    return { refresh };
  }

  function progressSummary(tables) {
    const copying = tables.filter((t) => !t.snapshot_done || ["Snapshot", "Adding", "Resync", "Setup"].includes(t.state));
    if (tables.length === 0) return "—";
    if (copying.length === 0) return h("span", { class: "muted" }, "all copied");
    const copied = copying.reduce((a, t) => a + t.rows_copied, 0);
    const est = copying.reduce((a, t) => a + t.rows_estimated, 0);
    return progressBar(copied, est, copying.length + " of " + tables.length + " tables copying");
  }

  function progressBar(copied, est, title) {
    const pct = est > 0 ? Math.min(100, Math.floor((copied * 100) / est)) : null;
    return h(
      "span",
      { class: "progress", title: title || "" },
      h("progress", { max: 100, value: pct == null ? 0 : pct }),
      h("span", { class: "num" }, fmtInt(copied) + " / ~" + fmtInt(est) + (pct == null ? "" : " (" + pct + "%)"))
    );
  }

  // ---------- create ----------

  const TEMPLATE = JSON.stringify(
    {
      name: "shop",
      source: { host: "127.0.0.1", port: 3306, user: "repl", password: "" },
      destination: { url: "http://127.0.0.1:8123", user: "default", password: "", database: "shop" },
      tables: [{ source: "shop.orders" }, { source: "shop.customers", destination: "customers_v2" }],
      mode: "snapshot_and_cdc",
      settings: { sync_interval_ms: 1000, pull_batch_size: 100000 },
    },
    null,
    2
  );
  let draft = TEMPLATE; // kept in memory only (it may hold passwords)

  function createView(main) {
    const msg = h("div", { class: "notice", hidden: true });
    const area = h("textarea", { class: "code", rows: 22, spellcheck: "false", autocomplete: "off", "aria-label": "pipe spec (JSON)", value: draft });
    area.addEventListener("input", () => (draft = area.value));
    const submit = h("button", { type: "submit" }, "Create pipe");
    const form = h(
      "form",
      { class: "card" },
      h(
        "p",
        null,
        "Paste or edit the pipe spec: the same JSON document as ",
        h("code", null, "sluice run --config"),
        " takes. The pipe starts at once. Passwords are encrypted at rest and never shown again."
      ),
      area,
      h(
        "div",
        { class: "actions" },
        submit,
        h("button", { type: "button", class: "secondary", onclick: () => {
          try {
            area.value = draft = JSON.stringify(JSON.parse(area.value), null, 2);
            notice(msg, "");
          } catch (e) {
            notice(msg, "Not valid JSON: " + e.message, "error");
          }
        } }, "Format JSON"),
        h("button", { type: "button", class: "secondary", onclick: () => { area.value = draft = TEMPLATE; notice(msg, ""); } }, "Reset to example")
      ),
      msg,
      h(
        "details",
        null,
        h("summary", null, "Field reference"),
        h(
          "table",
          { class: "grid compact" },
          h(
            "tbody",
            null,
            [
              ["name", "1–64 characters [A-Za-z0-9_-], unique on this server"],
              ["source.host, .port (3306), .user, .password", "the MySQL/MariaDB server"],
              ["source.server_id", "replica id of the binlog connection; derived from the name when absent"],
              ["destination.url, .user (default), .password, .database", "ClickHouse HTTP(S) endpoint and the database to create tables in"],
              ["tables[].source", "schema.table, or schema.* for every base table of a schema"],
              ["tables[].destination", "destination table name (default: the source table's name)"],
              ["tables[].partition_key", "indexed NOT NULL integer, date/datetime/timestamp or char/varchar/binary/varbinary column splitting the snapshot (default: the first key column)"],
              ["mode", "snapshot_and_cdc (default), snapshot_only, cdc_only"],
              ["settings.sync_interval_ms (1000)", "longest time a CDC batch collects changes"],
              ["settings.pull_batch_size (100000)", "most changes a CDC batch collects"],
              ["settings.snapshot_rows_per_chunk (25000)", "rows per snapshot query and insert"],
              ["settings.rows_per_partition (100000)", "rows per snapshot partition"],
              ["settings.parallel_partitions (4)", "partitions of a table read at once"],
              ["settings.parallel_tables (1)", "tables copied at once"],
            ].map(([f, d]) => h("tr", null, h("td", null, h("code", null, f)), h("td", null, d)))
          )
        )
      )
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      submit.disabled = true;
      notice(msg, "Creating…");
      try {
        const p = await api("POST", "/v1/pipes", area.value);
        draft = TEMPLATE;
        flash = "Pipe " + p.name + " created.";
        location.hash = "#/pipe/" + enc(p.name);
      } catch (err) {
        notice(msg, err.message, "error");
      } finally {
        submit.disabled = false;
      }
    });
    main.append(h("div", { class: "section-head" }, h("a", { href: "#/", class: "back" }, "← Pipes"), h("h1", null, "New pipe")), form);
    return { refresh: null };
  }

  // ---------- one pipe ----------

  // Which states allow which request (mirrors sluice_core::state::transition; the server decides).
  const ALLOWED = {
    pause: ["Snapshot", "Running"],
    resume: ["Paused"],
    resync: ["Running", "Paused", "Failed"],
    tables: ["Running", "Paused"],
  };

  function pipeView(main, name) {
    const msg = h("div", { class: "notice", hidden: true });
    const title = h("h1", null, name);
    const stateBadge = h("span");
    const modeLabel = h("span", { class: "muted" });
    const errorBox = h("div", { class: "error-box", hidden: true });
    const overview = h("dl", { class: "kv" });
    const tablesBody = h("tbody");
    const eventsBody = h("tbody");
    const eventsCount = h("span", { class: "muted" });
    const selected = new Set(); // destination names ticked for a resync
    let pipe = null;

    // Runs a request, shows its outcome, refreshes right after.
    async function act(label, fn, okText) {
      notice(msg, label + "…");
      try {
        const r = await fn();
        notice(msg, typeof okText === "function" ? okText(r) : okText, "ok");
      } catch (e) {
        notice(msg, label + " failed: " + e.message, "error");
      }
      refreshSoon();
    }

    const btnPause = h("button", { type: "button", onclick: () =>
      act("Pause", () => api("POST", pipePath(name) + "/pause"), (r) => "Pause requested: the pipe is " + r.state + " (Paused once the batch in flight is flushed).") }, "Pause");
    const btnResume = h("button", { type: "button", onclick: () =>
      act("Resume", () => api("POST", pipePath(name) + "/resume"), (r) => "Resumed: the pipe is " + r.state + ".") }, "Resume");
    const btnResyncAll = h("button", { type: "button", class: "secondary", onclick: async () => {
      const ok = await confirmAction({
        title: "Resync all tables of " + name + "?",
        text: "Every table is copied again into <table>_resync while the current tables keep serving their data, and swapped in atomically when its copy is complete. CDC restarts from the new copies' position.",
        okLabel: "Resync all",
      });
      if (ok) act("Resync", () => api("POST", pipePath(name) + "/resync", { tables: [] }), (r) => "Resync started: the pipe is " + r.state + ".");
    } }, "Resync all…");
    const btnDelete = h("button", { type: "button", class: "danger", onclick: async () => {
      const ok = await confirmAction({
        title: "Delete pipe " + name + "?",
        text: "The pipe is stopped and forgotten (its checkpoint and history too). This cannot be undone.",
        okLabel: "Delete pipe",
        checkLabel: "Also drop its destination tables in ClickHouse",
      });
      if (!ok) return;
      notice(msg, "Deleting…");
      try {
        await api("DELETE", pipePath(name) + "?drop_tables=" + (ok.checked ? "true" : "false"));
        flash = "Pipe " + name + " deleted" + (ok.checked ? " and its destination tables dropped." : "; its destination tables were kept.");
        location.hash = "#/";
      } catch (e) {
        notice(msg, "Delete failed: " + e.message, "error");
      }
    } }, "Delete…");

    const btnResyncSel = h("button", { type: "button", class: "secondary", disabled: true, onclick: async () => {
      const tables = [...selected];
      if (!tables.length) return;
      const ok = await confirmAction({
        title: "Resync " + tables.length + " table" + (tables.length > 1 ? "s" : "") + "?",
        text: tables.join(", ") + " will be copied again into <table>_resync and swapped in atomically when complete; the other tables keep flowing.",
        okLabel: "Resync",
      });
      if (ok) act("Resync", () => api("POST", pipePath(name) + "/resync", { tables }), (r) => {
        selected.clear();
        return "Resync of " + tables.join(", ") + " started: the pipe is " + r.state + ".";
      });
    } }, "Resync selected…");
    const checkAll = h("input", { type: "checkbox", "aria-label": "select all tables", onchange: () => {
      for (const t of pipe ? pipe.tables : []) checkAll.checked ? selected.add(t.destination) : selected.delete(t.destination);
      renderTables();
    } });

    // Settings form: inputs follow the live values until the user edits them.
    const settingFields = [
      ["sync_interval_ms", "Sync interval (ms)", "longest time a CDC batch collects changes"],
      ["pull_batch_size", "Pull batch size", "most changes a CDC batch collects"],
      ["snapshot_rows_per_chunk", "Snapshot rows per chunk", "rows per snapshot query and insert"],
    ];
    const inputs = {};
    const dirty = new Set();
    const settingsMsg = h("div", { class: "notice", hidden: true });
    const settingsForm = h(
      "form",
      { class: "settings" },
      settingFields.map(([k, label, hint]) => {
        const inp = h("input", { type: "number", min: 1, step: 1, required: true, name: k });
        inp.addEventListener("input", () => dirty.add(k));
        inputs[k] = inp;
        return h("label", { title: hint }, h("span", null, label), inp);
      }),
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Apply"), h("button", { type: "button", class: "secondary", onclick: () => { dirty.clear(); fillSettings(true); notice(settingsMsg, ""); } }, "Reset"))
    );
    settingsForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      const patch = {};
      for (const [k] of settingFields) {
        const v = Number(inputs[k].value);
        if (!Number.isInteger(v) || v < 1) return notice(settingsMsg, k + " must be a positive whole number.", "error");
        if (!pipe || v !== pipe.settings[k]) patch[k] = v;
      }
      if (!Object.keys(patch).length) return notice(settingsMsg, "Nothing changed.", "");
      notice(settingsMsg, "Applying…");
      try {
        const s = await api("PATCH", pipePath(name) + "/settings", patch);
        dirty.clear();
        if (pipe) pipe.settings = s;
        fillSettings(true);
        notice(settingsMsg, "Applied from the next batch: " + settingFields.map(([k]) => k + " " + fmtInt(s[k])).join(", ") + ".", "ok");
      } catch (err) {
        notice(settingsMsg, err.message, "error");
      }
      refreshSoon();
    });

    function fillSettings(force) {
      if (!pipe) return;
      for (const [k] of settingFields) {
        const inp = inputs[k];
        if (force || (!dirty.has(k) && document.activeElement !== inp)) inp.value = pipe.settings[k];
      }
    }

    // Add tables: one per line, `schema.table`, `schema.*` or `schema.table=destination` (as the CLI).
    const addArea = h("textarea", { class: "code", rows: 3, spellcheck: "false", placeholder: "shop.invoices\nshop.refunds=refunds_v2\ncrm.*", "aria-label": "tables to add" });
    const addMsg = h("div", { class: "notice", hidden: true });
    const addBtn = h("button", { type: "submit" }, "Add tables");
    const addForm = h(
      "form",
      null,
      h("p", { class: "muted" }, "One per line: ", h("code", null, "schema.table"), ", ", h("code", null, "schema.*"), " or ", h("code", null, "schema.table=destination"), ". They are copied alongside CDC."),
      addArea,
      h("div", { class: "actions" }, addBtn),
      addMsg
    );
    addForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      const tables = addArea.value
        .split("\n")
        .map((l) => l.trim())
        .filter(Boolean)
        .map((l) => {
          const i = l.indexOf("=");
          return i < 0 ? { source: l } : { source: l.slice(0, i).trim(), destination: l.slice(i + 1).trim() };
        });
      if (!tables.length) return notice(addMsg, "Enter at least one table.", "error");
      notice(addMsg, "Adding…");
      try {
        const r = await api("POST", pipePath(name) + "/tables", { tables });
        addArea.value = "";
        notice(addMsg, "Added: the pipe is " + r.state + " while the new tables are set up and copied.", "ok");
      } catch (err) {
        notice(addMsg, err.message, "error");
      }
      refreshSoon();
    });

    // Verification: start a run (optionally with repair), show the last run's result per table.
    const verifyBody = h("div");
    const verifyMsg = h("div", { class: "notice", hidden: true });
    async function startVerify(repair) {
      notice(verifyMsg, repair ? "Starting a verification with repair…" : "Starting a verification…");
      try {
        const r = await api("POST", pipePath(name) + "/verify", { tables: [], repair });
        notice(verifyMsg, "Verification #" + r.id + " started; its result appears below.", "ok");
      } catch (err) {
        notice(verifyMsg, "Verification failed to start: " + err.message, "error");
      }
      refreshSoon();
    }
    const btnVerify = h("button", { type: "button", class: "secondary", onclick: () => startVerify(false) }, "Verify");
    const btnVerifyRepair = h("button", { type: "button", class: "secondary", onclick: async () => {
      const ok = await confirmAction({
        title: "Verify and repair " + name + "?",
        text: "Rows that differ from the source are copied again from the source (a running pipe is paused while they are written, then resumed).",
        okLabel: "Verify and repair",
      });
      if (ok) startVerify(true);
    } }, "Verify and repair…");

    function renderVerification(runs) {
      const run = runs && runs[0];
      if (!run) return verifyBody.replaceChildren(h("p", { class: "muted" }, "No verification yet."));
      const head = h("p", null, "Run #" + run.id + ", started ", timeCell(run.started_at), ": ", badge(run.state === "done" ? (run.clean ? "clean" : "differences") : run.state),
        run.repair ? h("span", { class: "muted" }, " (with repair)") : "", run.error ? h("span", { class: "error-cell" }, " " + run.error) : "");
      const rows = run.tables.map((t) => h("tr", null,
        h("td", null, t.destination),
        h("td", null, t.state),
        h("td", null, fmtInt(t.rows_compared)),
        h("td", null, fmtInt(t.ranges_checked)),
        h("td", null, fmtInt(t.rows_differing) + (t.rows_repaired ? " (" + fmtInt(t.rows_repaired) + " repaired)" : "")),
        h("td", { class: "wrap" }, (t.fetched_columns || []).join(", ")),
        h("td", { class: "wrap" }, t.error ? h("span", { class: "error-cell" }, t.error) : (t.differences || []).slice(0, 50).map((d) => d.kind + " " + d.key + (d.columns && d.columns.length ? " (" + d.columns.join(", ") + ")" : "")).join("; ") + (t.differences_capped || (t.differences || []).length > 50 ? " …" : ""))
      ));
      verifyBody.replaceChildren(head, h("table", { class: "grid" },
        h("thead", null, h("tr", null, ["Table", "State", "Rows compared", "Ranges", "Differing", "Compared by fetching", "Differing keys"].map((x) => h("th", null, x)))),
        h("tbody", null, ...rows)));
    }

    main.append(
      h(
        "div",
        { class: "section-head" },
        h("a", { href: "#/", class: "back" }, "← Pipes"),
        title,
        stateBadge,
        modeLabel,
        h("span", { class: "spacer" }),
        h("div", { class: "actions" }, btnPause, btnResume, btnResyncAll, btnDelete)
      ),
      msg,
      errorBox,
      h(
        "div",
        { class: "cards" },
        h("section", { class: "card" }, h("h2", null, "Overview"), overview),
        h("section", { class: "card" }, h("h2", null, "Settings ", h("span", { class: "muted small" }, "(applied live, from the next batch)")), settingsForm, settingsMsg)
      ),
      h(
        "section",
        { class: "card" },
        h("div", { class: "section-head" }, h("h2", null, "Tables"), h("span", { class: "spacer" }), btnResyncSel),
        h(
          "table",
          { class: "grid" },
          h(
            "thead",
            null,
            h("tr", null, h("th", { class: "check" }, checkAll), ["Source", "Destination", "State", "Copy progress", "Snapshot done", "Error", ""].map((t) => h("th", null, t)))
          ),
          tablesBody
        )
      ),
      h("section", { class: "card" }, h("h2", null, "Add tables"), addForm),
      h("section", { class: "card" }, h("div", { class: "section-head" }, h("h2", null, "Verification"), h("span", { class: "spacer" }), h("div", { class: "actions" }, btnVerify, btnVerifyRepair)), verifyMsg, verifyBody),
      h("section", { class: "card" }, h("div", { class: "section-head" }, h("h2", null, "History"), eventsCount), h("table", { class: "grid" },
        h("thead", null, h("tr", null, ["Time", "From", "To", "Reason"].map((t) => h("th", null, t)))), eventsBody))
    );
    takeFlash(msg);

    function renderTables() {
      if (!pipe) return;
      const canModify = ALLOWED.tables.includes(pipe.state);
      const names = new Set(pipe.tables.map((t) => t.destination));
      for (const s of [...selected]) if (!names.has(s)) selected.delete(s);
      if (!pipe.tables.length) {
        tablesBody.replaceChildren(h("tr", null, h("td", { colspan: 8, class: "empty" }, "No tables yet: they are discovered and set up during Setup.")));
        updateSelection();
        return;
      }
      tablesBody.replaceChildren(
        ...pipe.tables.map((t) => {
          const box = h("input", { type: "checkbox", checked: selected.has(t.destination), "aria-label": "select " + t.destination, onchange: () => {
            box.checked ? selected.add(t.destination) : selected.delete(t.destination);
            updateSelection();
          } });
          const copying = !t.snapshot_done || ["Snapshot", "Adding", "Resync", "Setup"].includes(t.state);
          return h(
            "tr",
            null,
            h("td", { class: "check" }, box),
            h("td", null, t.source),
            h("td", null, t.destination),
            h("td", null, badge(t.state)),
            h("td", null, copying || t.rows_copied ? progressBar(t.rows_copied, t.rows_estimated, "rows copied / rows estimated by the source") : "—"),
            h("td", null, t.snapshot_done ? "yes" : "no"),
            h("td", { class: "error-cell wrap" }, t.error || ""),
            h("td", { class: "row-actions" }, h("button", {
              type: "button",
              class: "small danger-outline",
              disabled: !canModify || pipe.tables.length < 2,
              title: pipe.tables.length < 2 ? "The last table cannot be removed: delete the pipe instead." : canModify ? "Remove this table from the pipe" : "Not possible while the pipe is " + pipe.state,
              onclick: async () => {
                const ok = await confirmAction({
                  title: "Remove table " + t.destination + "?",
                  text: "Its changes are no longer applied and its mapping (" + t.source + " → " + t.destination + ") is forgotten.",
                  okLabel: "Remove table",
                  checkLabel: "Also drop the destination table " + t.destination + " in ClickHouse",
                });
                if (ok) act("Remove " + t.destination, () => api("DELETE", pipePath(name) + "/tables/" + enc(t.destination) + "?drop=" + (ok.checked ? "true" : "false")),
                  (r) => "Table " + t.destination + " removed" + (ok.checked ? " and dropped" : "") + ": the pipe is " + r.state + ".");
              },
            }, "Remove…"))
          );
        })
      );
      updateSelection();
    }

    function updateSelection() {
      const n = selected.size;
      btnResyncSel.textContent = n ? "Resync " + n + " selected…" : "Resync selected…";
      btnResyncSel.disabled = !n || !ALLOWED.resync.includes(pipe.state);
      checkAll.checked = pipe.tables.length > 0 && n === pipe.tables.length;
      checkAll.indeterminate = n > 0 && n < pipe.tables.length;
    }

    function renderPipe(p) {
      pipe = p;
      stateBadge.replaceChildren(badge(p.state));
      modeLabel.textContent = p.mode;
      const setAllowed = (btn, key) => {
        btn.disabled = !ALLOWED[key].includes(p.state);
        btn.title = btn.disabled ? "Not possible while the pipe is " + p.state : "";
      };
      setAllowed(btnPause, "pause");
      setAllowed(btnResume, "resume");
      setAllowed(btnResyncAll, "resync");
      addBtn.disabled = !ALLOWED.tables.includes(p.state);
      addBtn.title = addBtn.disabled ? "Tables can be added to a Running or Paused pipe (now " + p.state + ")" : "";

      errorBox.hidden = !p.error;
      errorBox.replaceChildren(h("strong", null, "Last error: "), p.error || "");

      const cp = p.checkpoint;
      const rows = [
        ["State", badge(p.state)],
        ["Mode", p.mode],
        ["Lag", fmtLag(p.lag_seconds)],
        ["Changes applied", fmtInt(p.changes_applied)],
        ["Checkpoint", cp ? h("code", null, cp.binlog_file + ":" + cp.binlog_pos) : "— (none yet)"],
        ["GTID set", cp && cp.gtid_set ? h("code", { class: "wrap" }, cp.gtid_set) : "—"],
        ["Source", h("code", null, p.source.user + "@" + p.source.host + ":" + p.source.port), h("span", { class: "muted" }, "  server id " + p.source.server_id)],
        ["Destination", h("code", null, p.destination.url), h("span", { class: "muted" }, "  user " + p.destination.user + ", database "), h("code", null, p.destination.database)],
        ["Created", timeCell(p.created_at)],
        ["Updated", timeCell(p.updated_at)],
      ];
      overview.replaceChildren(...rows.flatMap(([k, ...v]) => [h("dt", null, k), h("dd", null, ...v)]));
      fillSettings(false);
      renderTables();
    }

    function renderEvents(events) {
      eventsCount.textContent = events.length + " event" + (events.length === 1 ? "" : "s") + ", newest first";
      if (!events.length) return eventsBody.replaceChildren(h("tr", null, h("td", { colspan: 4, class: "empty" }, "No events yet.")));
      eventsBody.replaceChildren(
        ...events
          .slice()
          .reverse()
          .map((e) => h("tr", null, h("td", { class: "muted nowrap" }, timeCell(e.at)), h("td", null, e.from_state ? badge(e.from_state) : "—"), h("td", null, badge(e.to_state)), h("td", { class: "wrap" }, e.reason)))
      );
    }

    async function refresh() {
      try {
        const [p, ev, vr] = await Promise.all([api("GET", pipePath(name)), api("GET", pipePath(name) + "/events"), api("GET", pipePath(name) + "/verifications")]);
        renderPipe(p);
        renderEvents(ev);
        renderVerification(vr);
      } catch (e) {
        if (e.status === 404) {
          notice(msg, "There is no pipe named " + name + " (deleted?).", "error");
          for (const b of [btnPause, btnResume, btnResyncAll, btnDelete, btnResyncSel, addBtn, btnVerify, btnVerifyRepair]) b.disabled = true;
          return;
        }
        throw e;
      }
    }
    return { refresh };
  }

  // ---------- start ----------

  function init() {
    $("token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const t = $("token-input").value.trim();
      if (!t) return;
      sessionStorage.setItem(TOKEN_KEY, t);
      $("token-dialog").close();
      showBanner("");
      route();
    });
    $("token-forget").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      $("token-input").value = "";
      showBanner("No API token: enter it to see and manage pipes.", "error");
    });
    $("change-token").addEventListener("click", () => askToken(""));
    $("auto-refresh").addEventListener("change", () => tick());
    $("refresh-now").addEventListener("click", () => tick());
    document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
    window.addEventListener("hashchange", route);
    if (!getToken()) askToken("");
    route();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
