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

  const NOTICE_MS = 8000;

  /** Shows a message in a notice element: kind is "ok", "error" or "" (neutral). The message
   * replaces the element's earlier one; an "ok" one clears itself after a few seconds, any
   * one when clicked. A neutral one ("Pausing…") stays until its outcome replaces it. */
  function notice(el, text, kind) {
    clearTimeout(el._clear);
    el.textContent = text || "";
    el.className = "notice" + (kind ? " " + kind : "");
    el.hidden = !text;
    el.title = text ? "click to dismiss" : "";
    if (!el._dismiss) {
      el._dismiss = true;
      el.addEventListener("click", () => notice(el, ""));
    }
    if (text && kind === "ok") el._clear = setTimeout(() => notice(el, ""), NOTICE_MS);
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

  let lastOk = null; // when the server last answered

  /** The server cannot be reached: say so, and make the page read-only (states shown may be stale). */
  function setOffline(off) {
    document.body.classList.toggle("offline", off);
    $("main").inert = off;
    $("offline-badge").hidden = !off;
    if (off) {
      showBanner("The Sluice server cannot be reached" + (lastOk ? " since " + lastOk.toLocaleTimeString() : "") +
        ": what is shown may be out of date, and actions are disabled until it answers again.", "error");
    } else {
      lastOk = new Date();
    }
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
      setOffline(false);
    } catch (e) {
      if (e.status === 0) setOffline(true);
      else if (e.status !== 401) showBanner(e.message, "error");
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
    window.scrollTo(0, 0);
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

  // Sorting of the pipe list: column key → value of a pipe to compare.
  const LIST_COLUMNS = [
    ["Name", (p) => p.name],
    ["State", (p) => p.state],
    ["Mode", (p) => p.mode],
    ["Tables", (p) => p.tables.length],
    ["Copy progress", (p) => copiedFraction(p.tables)],
    ["Lag", (p) => (p.lag_seconds == null ? -1 : p.lag_seconds)],
    ["Changes applied", (p) => p.changes_applied],
    ["Worker", (p) => p.worker || ""],
    ["Last error", (p) => p.error || ""],
    ["Updated", (p) => p.updated_at],
  ];
  const listState = { query: "", sort: 0, desc: false }; // kept across visits of the list

  function copiedFraction(tables) {
    const est = tables.reduce((a, t) => a + t.rows_estimated, 0);
    return est > 0 ? tables.reduce((a, t) => a + t.rows_copied, 0) / est : 1;
  }

  function listView(main) {
    const msg = h("div", { class: "notice", hidden: true });
    const tbody = h("tbody");
    const empty = h(
      "p",
      { class: "empty", hidden: true },
      "No pipes yet. ",
      h("a", { href: "#/new" }, "Create one"),
      " with the guided form."
    );
    const noMatch = h("p", { class: "empty", hidden: true }, "No pipe matches the search.");
    let pipes = [];
    const search = h("input", { type: "search", id: "pipe-search", placeholder: "Search name, state, table, error…", "aria-label": "search pipes", value: listState.query });
    search.addEventListener("input", () => {
      listState.query = search.value;
      render();
    });
    const heads = LIST_COLUMNS.map(([label], i) =>
      h("th", { class: "sortable", "aria-sort": "none", title: "Sort by " + label.toLowerCase(), onclick: () => {
        listState.desc = listState.sort === i ? !listState.desc : false;
        listState.sort = i;
        render();
      } }, label)
    );
    main.append(
      h("div", { class: "section-head" }, h("h1", null, "Pipes"), search, h("span", { class: "spacer" }), h("a", { class: "button", href: "#/new" }, "New pipe")),
      msg,
      h("div", { class: "scroll-x" }, h("table", { class: "grid", id: "pipe-list" }, h("thead", null, h("tr", null, heads)), tbody)),
      empty,
      noMatch
    );
    takeFlash(msg);

    function render() {
      const q = listState.query.trim().toLowerCase();
      const matches = (p) =>
        !q || [p.name, p.state, p.mode, p.error || "", ...p.tables.flatMap((t) => [t.source, t.destination])].some((x) => String(x).toLowerCase().includes(q));
      const key = LIST_COLUMNS[listState.sort][1];
      const shown = pipes.filter(matches).sort((a, b) => {
        const x = key(a), y = key(b);
        const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
        return listState.desc ? -c : c;
      });
      heads.forEach((th, i) => {
        th.setAttribute("aria-sort", i === listState.sort ? (listState.desc ? "descending" : "ascending") : "none");
        th.dataset.arrow = i === listState.sort ? (listState.desc ? "▼" : "▲") : "";
      });
      empty.hidden = pipes.length > 0;
      noMatch.hidden = !pipes.length || shown.length > 0;
      tbody.replaceChildren(
        ...shown.map((p) => {
          const href = "#/pipe/" + enc(p.name);
          const errTables = p.tables.filter((t) => t.state === "Error").length;
          return h(
            "tr",
            { class: "clickable", onclick: (e) => { if (!e.target.closest("a")) location.hash = href; } },
            h("td", null, h("a", { href, class: "name" }, p.name)),
            h("td", null, badge(p.state), p.warning ? h("span", { class: "badge state-pausing small", title: p.warning }, "warning") : null),
            h("td", { class: "muted" }, p.mode),
            h("td", { class: "num" }, String(p.tables.length), errTables ? h("span", { class: "badge state-error small" }, errTables + " in Error") : null),
            h("td", null, progressSummary(p.tables)),
            h("td", { class: "num" }, fmtLag(p.lag_seconds)),
            h("td", { class: "num" }, fmtInt(p.changes_applied)),
            h("td", { class: "muted", title: p.placement || "" }, p.worker || (p.placement ? "waiting" : "—")),
            h("td", { class: "error-cell", title: p.error || "" }, p.error || ""),
            h("td", { class: "muted" }, timeCell(p.updated_at))
          );
        })
      );
    }

    async function refresh() {
      pipes = await api("GET", "/v1/pipes");
      render();
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

  // ---------- create: a guided form, and the same spec as JSON ----------

  // The sync settings: key, label, one-line help, default, minimum.
  const SETTINGS = [
    ["sync_interval_ms", "Sync interval (ms)", "longest time a CDC batch collects changes", 1000, 1],
    ["pull_batch_size", "Pull batch size", "most row changes a CDC batch collects", 100000, 1],
    ["snapshot_rows_per_chunk", "Snapshot rows per chunk", "rows read per snapshot query and written per insert", 100000, 1],
    ["rows_per_partition", "Rows per partition", "rows per snapshot partition (a range of the key)", 100000, 1],
    ["parallel_partitions", "Parallel partitions", "partitions of one table read at once, each on its own connection", 4, 1],
    ["parallel_tables", "Parallel tables", "tables copied at once during the snapshot", 1, 1],
    ["heartbeat_interval_ms", "Heartbeat interval (ms)", "how often the heartbeat table is written (when one is set)", 30000, 1],
  ];
  const TLS_MODES = ["disabled", "preferred", "required", "verify_ca", "verify_identity"];
  const MECHANISMS = [["auto", "auto (GTIDs when on, else file/position)"], ["gtid", "gtid"], ["file_pos", "file_pos"]];
  const MODES = [["snapshot_and_cdc", "snapshot, then CDC"], ["snapshot_only", "snapshot only"], ["cdc_only", "CDC only (no snapshot)"]];
  const ENGINES = [["replacing", "replacing (default)"], ["merge_tree", "merge_tree (change log)"], ["null", "null"]];

  function blankSpec() {
    return {
      name: "",
      source: { host: "", port: 3306, user: "", password: "" },
      destination: { url: "http://127.0.0.1:8123", user: "default", password: "", database: "" },
      tables: [],
      mode: "snapshot_and_cdc",
    };
  }
  let draft = blankSpec(); // the spec being written: kept in memory only (it may hold passwords)
  let draftListing = null; // the last table listing of the source (POST /v1/sources/tables)

  function getPath(obj, path) {
    return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
  }

  /** Sets (or, with undefined, removes) a dotted path; objects left empty on the way are removed. */
  function setPath(obj, path, v) {
    const ks = path.split(".");
    const chain = [obj];
    let o = obj;
    for (const k of ks.slice(0, -1)) {
      if (typeof o[k] !== "object" || o[k] === null || Array.isArray(o[k])) o[k] = {};
      o = o[k];
      chain.push(o);
    }
    const last = ks[ks.length - 1];
    if (v === undefined) delete o[last];
    else o[last] = v;
    for (let i = ks.length - 1; i > 0; i--) {
      if (Object.keys(chain[i]).length) break;
      delete chain[i - 1][ks[i - 1]];
    }
  }

  const listOf = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

  /** The checks' outcome as a list: PASS / WARN / FAIL, the check, what was found and the fix. */
  function checksList(checks) {
    return h(
      "ul",
      { class: "checks" },
      checks.map((c) => {
        const verdict = !c.ok ? "FAIL" : c.warning ? "WARN" : "PASS";
        return h(
          "li",
          { class: "check-" + verdict.toLowerCase(), "data-check": c.name },
          h("span", { class: "badge " + (verdict === "FAIL" ? "state-failed" : verdict === "WARN" ? "state-pausing" : "state-running") }, verdict),
          " ",
          h("strong", null, c.name),
          ": ",
          c.found,
          c.fix ? h("div", { class: "fix muted" }, (c.ok ? "advice: " : "fix: ") + c.fix) : null
        );
      })
    );
  }

  function createView(main) {
    const fields = {}; // path → input, for the form's plain fields
    const fieldErrors = h("div");
    const createMsg = h("div", { class: "notice", hidden: true, id: "create-msg" });
    const checksBox = h("div", { id: "checks-result" });
    const checksMsg = h("div", { class: "notice", hidden: true, id: "checks-msg" });
    const pickerMsg = h("div", { class: "notice", hidden: true, id: "picker-msg" });
    const jsonMsg = h("div", { class: "notice", hidden: true });

    // One plain field bound to a path of the spec. kind: text, password, number, select, textarea, checkbox.
    function field(path, label, opts) {
      const o = opts || {};
      const kind = o.kind || "text";
      let inp;
      if (kind === "select") inp = h("select", { name: path }, o.options.map(([v, l]) => h("option", { value: v }, l)));
      else if (kind === "textarea") inp = h("textarea", { name: path, rows: 3, class: "code", spellcheck: "false", placeholder: o.placeholder || "" });
      else inp = h("input", { name: path, type: kind, placeholder: o.placeholder || "", autocomplete: kind === "password" ? "new-password" : "off", spellcheck: "false", min: o.min });
      inp.dataset.path = path;
      const onEdit = () => {
        let v;
        if (kind === "checkbox") v = inp.checked ? true : undefined;
        else if (kind === "number") v = inp.value.trim() === "" ? undefined : Number(inp.value);
        else if (kind === "select") v = inp.value === o.dflt ? undefined : inp.value;
        else v = inp.value === "" && !o.keepEmpty ? undefined : inp.value;
        setPath(draft, path, v);
        inp.classList.remove("invalid");
        syncJson();
      };
      inp.addEventListener(kind === "checkbox" || kind === "select" ? "change" : "input", onEdit);
      fields[path] = { inp, kind, dflt: o.dflt };
      if (kind === "checkbox") return h("label", { class: "check", title: o.help || "" }, inp, " ", label);
      return h("label", { class: "field" + (o.wide ? " wide" : "") }, h("span", null, label, o.help ? h("small", { class: "muted" }, o.help) : null), inp);
    }

    function fillForm() {
      for (const [path, f] of Object.entries(fields)) {
        const v = getPath(draft, path);
        if (f.kind === "checkbox") f.inp.checked = !!v;
        else if (f.kind === "select") f.inp.value = v == null ? f.dflt : v;
        else f.inp.value = v == null ? "" : v;
      }
      sshBox.checked = !!(draft.source && draft.source.ssh);
      sshFields.hidden = !sshBox.checked;
      showCa();
    }

    // The CA certificate matters only to the verifying TLS modes.
    function showCa() {
      const tls = (draft.source && draft.source.tls) || {};
      fields["source.tls.ca_cert"].inp.closest("label").hidden = !["verify_ca", "verify_identity"].includes(tls.mode) && !tls.ca_cert;
    }

    // ---- the JSON tab ----
    const area = h("textarea", { class: "code", rows: 24, spellcheck: "false", autocomplete: "off", "aria-label": "pipe spec (JSON)", id: "spec-json" });
    function syncJson() {
      area.value = JSON.stringify(draft, null, 2);
      notice(jsonMsg, "");
    }
    area.addEventListener("input", () => {
      let v;
      try {
        v = JSON.parse(area.value);
      } catch (e) {
        return notice(jsonMsg, "Not valid JSON (" + e.message + "): the form keeps the last valid version.", "error");
      }
      if (!v || typeof v !== "object" || Array.isArray(v)) return notice(jsonMsg, "The spec must be a JSON object.", "error");
      if (!Array.isArray(v.tables)) v.tables = [];
      draft = v;
      notice(jsonMsg, "");
      fillForm();
      renderPicker();
    });

    // ---- SSH tunnel ----
    const sshFields = h(
      "div",
      { class: "grid-fields", hidden: true },
      field("source.ssh.host", "SSH host", { placeholder: "bastion.example.com", keepEmpty: true }),
      field("source.ssh.port", "SSH port", { kind: "number", placeholder: "22", min: 1 }),
      field("source.ssh.user", "SSH user", { keepEmpty: true }),
      field("source.ssh.password", "SSH password", { kind: "password", help: "or a private key" }),
      field("source.ssh.private_key", "SSH private key", { kind: "textarea", placeholder: "-----BEGIN OPENSSH PRIVATE KEY-----", wide: true }),
      field("source.ssh.known_host_key", "Server host key", { placeholder: "ssh-ed25519 AAAA… (ssh-keyscan prints it)", wide: true }),
      field("source.ssh.insecure_skip_host_key_check", "Do not check the host key (tests only)", { kind: "checkbox" })
    );
    const sshBox = h("input", { type: "checkbox", name: "use-ssh", onchange: () => {
      if (sshBox.checked) draft.source.ssh = draft.source.ssh || { host: "", port: 22, user: "" };
      else delete draft.source.ssh;
      fillForm();
      syncJson();
    } });

    // ---- tables ----
    const search = h("input", { type: "search", id: "table-search", placeholder: "Filter tables…", "aria-label": "filter tables" });
    search.addEventListener("input", () => renderPicker());
    const pickerBody = h("div", { class: "picker", id: "table-picker" });
    const loadBtn = h("button", { type: "button", class: "secondary", onclick: () => loadTables() }, "Load tables");

    async function loadTables() {
      if (!draft.source) return;
      loadBtn.disabled = true;
      notice(pickerMsg, "Reading the source's tables…");
      try {
        draftListing = await api("POST", "/v1/sources/tables", { source: draft.source });
        const n = draftListing.schemas.reduce((a, s) => a + s.tables.length, 0);
        notice(pickerMsg, n + " tables in " + draftListing.schemas.length + " schemas (" + draftListing.server + ").", "ok");
      } catch (e) {
        notice(pickerMsg, "Cannot list the tables: " + e.message, "error");
      } finally {
        loadBtn.disabled = false;
      }
      renderPicker();
    }

    const entryOf = (src) => draft.tables.find((t) => t.source === src);
    function toggleEntry(src, on) {
      if (on && !entryOf(src)) draft.tables.push({ source: src });
      if (!on) draft.tables = draft.tables.filter((t) => t.source !== src);
      syncJson();
      renderPicker();
    }

    // The options of one named table's entry (writing into the entry in place).
    function optionsPanel(entry, t) {
      const set = (k, v) => {
        if (v === undefined || v === "" || (Array.isArray(v) && !v.length)) delete entry[k];
        else entry[k] = v;
        syncJson();
      };
      const text = (k, label, placeholder, asList, help) => {
        const cur = entry[k];
        const inp = h("input", { type: "text", name: k, placeholder: placeholder || "", value: cur == null ? "" : Array.isArray(cur) ? cur.join(", ") : cur, spellcheck: "false" });
        inp.addEventListener("input", () => set(k, asList ? listOf(inp.value) : inp.value.trim() || undefined));
        return h("label", { class: "field" }, h("span", null, label, help ? h("small", { class: "muted" }, help) : null), inp);
      };
      const cols = t ? t.columns : [];
      const excluded = new Set(entry.exclude_columns || []);
      const exclude = h(
        "fieldset",
        { class: "columns" },
        h("legend", null, "Exclude columns"),
        cols.length
          ? cols.map((c) => {
              const box = h("input", { type: "checkbox", "data-exclude": c.name, checked: excluded.has(c.name), disabled: c.in_key, onchange: () => {
                box.checked ? excluded.add(c.name) : excluded.delete(c.name);
                set("exclude_columns", cols.map((x) => x.name).filter((n) => excluded.has(n)));
              } });
              return h("label", { class: "check col", title: c.source_type + " → " + c.clickhouse_type + (c.in_key ? " (key column: cannot be excluded)" : "") }, box, " ", c.name, " ", h("small", { class: "muted" }, c.source_type));
            })
          : h("span", { class: "muted" }, "Load the tables to pick columns; or set exclude_columns in the JSON tab.")
      );
      const engine = h("select", { name: "engine", onchange: () => set("engine", engine.value === "replacing" ? undefined : engine.value) }, ENGINES.map(([v, l]) => h("option", { value: v }, l)));
      engine.value = entry.engine || "replacing";
      const pk = h("select", { name: "partition_key", onchange: () => set("partition_key", pk.value || undefined) }, h("option", { value: "" }, "default (first key column)"), cols.map((c) => h("option", { value: c.name }, c.name)));
      pk.value = entry.partition_key || "";
      const keyless = t && !t.has_key;
      return h(
        "div",
        { class: "options", "data-options": entry.source },
        exclude,
        h(
          "div",
          { class: "grid-fields" },
          text("destination", "Destination table", t ? t.name : "", false),
          text("sorting_key", "Sorting key (ORDER BY)", t && t.key.length ? t.key.join(", ") : "columns, comma-separated", true, "must contain the key columns"),
          h("label", { class: "field" }, h("span", null, "Engine"), engine),
          text("partition_by", "Partition by", "e.g. toYYYYMM(created_at)", false, "a ClickHouse expression"),
          h("label", { class: "field" }, h("span", null, "Snapshot partition key"), pk),
          keyless || entry.key_columns ? text("key_columns", "Key columns", "columns that identify a row", true, "for a table without a key") : null
        )
      );
    }

    function renderPicker() {
      const q = search.value.trim().toLowerCase();
      const known = new Set();
      const blocks = [];
      for (const s of draftListing ? draftListing.schemas : []) {
        const wild = s.name + ".*";
        const tables = s.tables.filter((t) => !q || (s.name + "." + t.name).toLowerCase().includes(q));
        known.add(wild);
        s.tables.forEach((t) => known.add(s.name + "." + t.name));
        if (q && !tables.length && !s.name.toLowerCase().includes(q)) continue;
        const whole = !!entryOf(wild);
        blocks.push(
          h(
            "section",
            { class: "schema", "data-schema-block": s.name },
            h(
              "div",
              { class: "schema-head" },
              h("strong", null, s.name),
              h("label", { class: "check", title: "every base table of the schema, now and later (" + wild + ")" },
                h("input", { type: "checkbox", "data-schema": s.name, checked: whole, onchange: (e) => toggleEntry(wild, e.target.checked) }),
                " whole schema (", h("code", null, wild), ")"),
              h("span", { class: "muted" }, s.tables.length + " tables")
            ),
            h(
              "ul",
              { class: "tables" },
              tables.map((t) => {
                const src = s.name + "." + t.name;
                const entry = entryOf(src);
                const note = t.notes.map((n) => h("div", { class: "table-note " + n.level }, n.message, n.fix ? h("div", { class: "muted" }, "fix: " + n.fix) : null));
                return h(
                  "li",
                  { "data-table": src },
                  h(
                    "label",
                    { class: "check table-row" },
                    h("input", { type: "checkbox", "data-source": src, checked: !!entry, onchange: (e) => toggleEntry(src, e.target.checked) }),
                    " ",
                    h("span", { class: "name" }, t.name),
                    h("span", { class: "muted small" }, " ~" + fmtInt(t.rows_estimated) + " rows · " + (t.has_key ? "key (" + t.key.join(", ") + ")" : "no key")),
                    whole && !entry ? h("span", { class: "muted small" }, t.replicable ? " · included by " + wild : " · skipped by " + wild) : null
                  ),
                  note,
                  entry ? optionsPanel(entry, t) : null
                );
              })
            )
          )
        );
      }
      // Entries not in the listing (typed in the JSON tab, or before the tables were loaded).
      const others = draft.tables.filter((t) => !known.has(t.source));
      const otherBlock = others.length
        ? h(
            "section",
            { class: "schema" },
            h("div", { class: "schema-head" }, h("strong", null, draftListing ? "Other entries" : "Selected tables")),
            h("ul", { class: "tables" }, others.map((e) => h("li", { "data-table": e.source }, h("code", null, e.source), " ",
              h("button", { type: "button", class: "small secondary", onclick: () => toggleEntry(e.source, false) }, "Remove"),
              e.source.endsWith(".*") ? null : optionsPanel(e, null))))
          )
        : null;
      const count = h("p", { class: "muted", id: "selected-count" }, draft.tables.length + " table entr" + (draft.tables.length === 1 ? "y" : "ies") + " selected.");
      const hint = !draftListing && !others.length ? h("p", { class: "muted" }, "Fill in the source, then “Load tables” (or “Test connection”) to pick tables.") : null;
      pickerBody.replaceChildren(...[count, ...blocks, otherBlock, hint].filter(Boolean));
    }

    // ---- test connection: the pre-flight checks ----
    const PROBE = "_sluice_form_probe._none";
    const testBtn = h("button", { type: "button", class: "secondary", id: "test-connection", onclick: async () => {
      testBtn.disabled = true;
      checksBox.replaceChildren();
      notice(checksMsg, "Running the pre-flight checks…");
      // Before tables are picked the checks run with a placeholder table, whose check is left out.
      const probing = !draft.tables.length;
      // Name and database are not needed to test connections: placeholders stand in until they are filled.
      const spec = JSON.parse(JSON.stringify(draft));
      if (probing) spec.tables = [{ source: PROBE }];
      if (!spec.name) spec.name = "connection-test";
      if (spec.destination && !spec.destination.database) spec.destination.database = "default";
      try {
        const r = await api("POST", "/v1/checks", spec);
        const checks = probing ? r.checks.filter((c) => c.name !== "tables") : r.checks;
        const failed = checks.filter((c) => !c.ok).length;
        const warned = checks.filter((c) => c.ok && c.warning).length;
        checksBox.replaceChildren(checksList(checks));
        notice(checksMsg, failed ? failed + " check(s) failed: see the fixes below." : "All checks passed" + (warned ? " (" + warned + " warning(s))" : "") + (probing ? "; pick tables to check them too." : "."), failed ? "error" : "ok");
        const reached = !checks.some((c) => c.name === "source_connection" && !c.ok);
        if (reached && !draftListing) loadTables();
      } catch (e) {
        notice(checksMsg, "The checks could not run: " + e.message, "error");
        markField(e.message);
      } finally {
        testBtn.disabled = false;
      }
    } }, "Test connection");

    // A validation error names its field (`invalid pipe spec: source.port: ...`): mark that input.
    function markField(message) {
      Object.values(fields).forEach((f) => f.inp.classList.remove("invalid"));
      const m = /invalid pipe spec: ([A-Za-z0-9_.\[\]]+):/.exec(message || "");
      const f = m && fields[m[1]];
      if (f) {
        f.inp.classList.add("invalid");
        f.inp.focus();
      }
      fieldErrors.replaceChildren();
    }

    // ---- the form ----
    const settingsFields = SETTINGS.map(([k, label, help, dflt, min]) =>
      field("settings." + k, label + " — default " + fmtInt(dflt), { kind: "number", placeholder: String(dflt), min, help })
    );
    const submit = h("button", { type: "submit", id: "create-pipe" }, "Create pipe");
    const guided = h(
      "div",
      { class: "guided", id: "guided-form" },
      h(
        "fieldset",
        { class: "card" },
        h("legend", null, "Pipe"),
        h("div", { class: "grid-fields" },
          field("name", "Name", { placeholder: "shop", keepEmpty: true, help: "1–64 of A-Z a-z 0-9 _ -" }),
          field("mode", "Mode", { kind: "select", options: MODES, dflt: "snapshot_and_cdc" }))
      ),
      h(
        "fieldset",
        { class: "card" },
        h("legend", null, "Source (MySQL / MariaDB)"),
        h("div", { class: "grid-fields" },
          field("source.host", "Host", { placeholder: "db.example.com", keepEmpty: true }),
          field("source.port", "Port", { kind: "number", placeholder: "3306", min: 1 }),
          field("source.user", "User", { placeholder: "repl", keepEmpty: true, help: "needs SELECT, REPLICATION CLIENT, REPLICATION SLAVE" }),
          field("source.password", "Password", { kind: "password", keepEmpty: true }),
          field("source.tls.mode", "TLS", { kind: "select", options: TLS_MODES.map((m) => [m, m]), dflt: "preferred" }),
          field("source.replication_mechanism", "Replication mechanism", { kind: "select", options: MECHANISMS, dflt: "auto" }),
          field("source.heartbeat_table", "Heartbeat table", { placeholder: "schema.table (optional)", help: "written every heartbeat interval, so the lag moves while tables are quiet" }),
          field("source.tls.ca_cert", "TLS CA certificate (PEM)", { kind: "textarea", placeholder: "-----BEGIN CERTIFICATE----- (verify_ca / verify_identity)", wide: true })),
        h("label", { class: "check" }, sshBox, " Reach the source through an SSH tunnel"),
        sshFields
      ),
      h(
        "fieldset",
        { class: "card" },
        h("legend", null, "Destination (ClickHouse)"),
        h("div", { class: "grid-fields" },
          field("destination.url", "URL", { placeholder: "http://127.0.0.1:8123", keepEmpty: true, help: "the HTTP(S) interface" }),
          field("destination.user", "User", { placeholder: "default" }),
          field("destination.password", "Password", { kind: "password", keepEmpty: true }),
          field("destination.database", "Database", { placeholder: "shop", keepEmpty: true, help: "created if missing" }))
      ),
      h("div", { class: "card" }, h("div", { class: "section-head" }, h("h2", null, "Connection"), h("span", { class: "spacer" }), testBtn), checksMsg, checksBox),
      h(
        "fieldset",
        { class: "card" },
        h("legend", null, "Tables"),
        h("div", { class: "section-head" }, search, h("span", { class: "spacer" }), loadBtn),
        pickerMsg,
        pickerBody
      ),
      h("fieldset", { class: "card" }, h("legend", null, "Sync settings ", h("small", { class: "muted" }, "(empty = default; all can be changed later, live)")), h("div", { class: "grid-fields" }, settingsFields))
    );
    fields["source.tls.mode"].inp.addEventListener("change", showCa);
    const advanced = h(
      "div",
      { class: "card", hidden: true, id: "json-tab" },
      h("p", null, "The same spec as the form, as JSON (what ", h("code", null, "sluice run --config"), " takes): edits here show in the form and the other way round."),
      area,
      jsonMsg,
      h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", onclick: () => {
        draft = blankSpec();
        fillForm();
        syncJson();
        renderPicker();
      } }, "Clear"))
    );
    const tabs = [["form", "Form", guided], ["json", "Advanced (JSON)", advanced]].map(([key, label, panel]) => {
      const b = h("button", { type: "button", role: "tab", class: "secondary tab" + (key === "form" ? " active" : ""), "data-tab": key, onclick: () => {
        tabs.forEach(([bb, p]) => {
          bb.classList.toggle("active", bb === b);
          p.hidden = bb !== b;
        });
        if (key === "json") syncJson();
      } }, label);
      return [b, panel];
    });
    const form = h(
      "form",
      { class: "create", novalidate: true },
      h("div", { class: "tabs", role: "tablist" }, tabs.map(([b]) => b)),
      guided,
      advanced,
      h("div", { class: "card create-bar" }, h("div", { class: "actions" }, submit, h("span", { class: "muted" }, "The pre-flight checks run first; the pipe starts at once. Passwords are encrypted at rest and never shown again.")), createMsg, fieldErrors)
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      submit.disabled = true;
      notice(createMsg, "Creating (the pre-flight checks run first)…");
      try {
        const p = await api("POST", "/v1/pipes", JSON.stringify(draft));
        draft = blankSpec();
        draftListing = null;
        flash = "Pipe " + p.name + " created.";
        location.hash = "#/pipe/" + enc(p.name);
      } catch (err) {
        notice(createMsg, err.message, "error");
        if (err.body && err.body.checks) {
          checksBox.replaceChildren(checksList(err.body.checks.checks));
          notice(checksMsg, "Creation was refused by the pre-flight checks:", "error");
        }
        markField(err.message);
      } finally {
        submit.disabled = false;
      }
    });
    main.append(h("div", { class: "section-head" }, h("a", { href: "#/", class: "back" }, "← Pipes"), h("h1", null, "New pipe")), form);
    fillForm();
    syncJson();
    renderPicker();
    return { refresh: null };
  }

  // ---------- charts (hand-drawn SVG) ----------

  const SVG_NS = "http://www.w3.org/2000/svg";
  const CHART_REFRESH_MS = 10000;
  const EVENTS_PAGE = 50;
  const RANGES = { "1h": { label: "hour", secs: 3600 }, "1d": { label: "day", secs: 86400 }, "30d": { label: "month", secs: 30 * 86400 } };
  const PIPE_CHARTS = [
    { metric: "lag_seconds", title: "Lag", unit: "s" },
    { metric: "changes_per_second", title: "Changes / s", unit: "" },
    { metric: "snapshot_rows_per_second", title: "Snapshot rows / s", unit: "" },
    { metric: "batch_seconds", title: "Batch duration", unit: "s" },
  ];
  const TABLE_CHARTS = [
    { metric: "upserts_per_second", title: "Inserts + updates / s", unit: "" },
    { metric: "deletes_per_second", title: "Deletes / s", unit: "" },
    { metric: "snapshot_rows_per_second", title: "Snapshot rows / s", unit: "" },
  ];
  // History lines worth a second look (failures, retries, alerts).
  const PROBLEM = /error|fail|retr|warn|alert|cannot|refus/i;

  function svg(tag, attrs) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    return el;
  }

  function fmtNum(v, unit) {
    if (v == null || !isFinite(v)) return "—";
    const a = Math.abs(v);
    const n = a >= 1e6 ? (v / 1e6).toFixed(1) + " M" : a >= 1e4 ? (v / 1e3).toFixed(1) + " k" : a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
    return n + (unit ? " " + unit : "");
  }

  /** One chart: a line (and its area) of `series.points` over the last `rangeSecs`; gaps
   * longer than two points break the line, unless a missing point means 0. */
  function chart(def, series, rangeSecs) {
    const W = 600, H = 120;
    const now = Date.now() / 1000, start = now - rangeSecs;
    const res = series.resolution || 10;
    let pts = series.points.filter(([at]) => at + res >= start);
    if (series.missing_is_zero && pts.length) {
      const have = new Map(pts);
      pts = [];
      for (let at = Math.ceil(start / res) * res; at <= now; at += res) pts.push([at, have.get(at) || 0]);
    }
    const max = pts.reduce((m, [, v]) => Math.max(m, v), 0) || 1;
    const x = (at) => Math.max(0, Math.min(W, ((at - start) / rangeSecs) * W));
    const y = (v) => H - 2 - (v / max) * (H - 8);
    const segments = [];
    let seg = null, prev = null;
    for (const [at, v] of pts) {
      if (!seg || at - prev > 2.5 * res) segments.push((seg = []));
      seg.push([x(at), y(v)]);
      prev = at;
    }
    const line = segments.map((sg) => "M" + sg.map(([a, b]) => a.toFixed(1) + " " + b.toFixed(1)).join(" L")).join(" ");
    const area = segments.map((sg) => "M" + sg[0][0].toFixed(1) + " " + H + " L" + sg.map(([a, b]) => a.toFixed(1) + " " + b.toFixed(1)).join(" L") + " L" + sg[sg.length - 1][0].toFixed(1) + " " + H + " Z").join(" ");
    const plot = svg("svg", { viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", class: "chart-svg", role: "img", "aria-label": def.title + " over the last " + rangeSecs / 3600 + " h" });
    for (const f of [0.25, 0.5, 0.75]) plot.append(svg("line", { x1: 0, x2: W, y1: y(max * f), y2: y(max * f), class: "grid-line" }));
    if (segments.length) {
      plot.append(svg("path", { d: area, class: "area" }), svg("path", { d: line, class: "line" }));
    }
    const last = pts.length ? pts[pts.length - 1][1] : null;
    const fmtAxis = (t) => new Date(t * 1000).toLocaleString([], rangeSecs > 86400 ? { month: "short", day: "numeric" } : { hour: "2-digit", minute: "2-digit" });
    return h(
      "figure",
      { class: "chart", "data-metric": def.metric, "data-points": String(pts.length) },
      h("figcaption", null, h("span", null, def.title), h("span", { class: "muted num" }, pts.length ? "now " + fmtNum(last, def.unit) + " · max " + fmtNum(max === 1 && !pts.some(([, v]) => v) ? 0 : max, def.unit) : "")),
      h("div", { class: "plot" }, plot, segments.length ? null : h("span", { class: "chart-empty muted" }, "no data yet (sampled every 10 s)")),
      h("div", { class: "axis muted" }, h("span", null, fmtAxis(start)), h("span", null, "now"))
    );
  }

  // ---------- one pipe ----------

  // Which states allow which request (mirrors sluice_core::state::transition; the server decides).
  const ALLOWED = {
    pause: ["Snapshot", "Running"],
    resume: ["Paused"],
    resync: ["Running", "Paused", "Failed"],
    tables: ["Running", "Paused"],
    source: ["Paused", "Failed"],
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
    let recent = []; // the newest page of history, refreshed
    let older = []; // older pages, loaded on request
    let moreOlder = false;
    const btnOlder = h("button", { type: "button", class: "secondary small", hidden: true, onclick: async () => {
      const all = mergedEvents();
      if (!all.length) return;
      btnOlder.disabled = true;
      try {
        const page = await api("GET", pipePath(name) + "/events?before=" + all[0].id + "&limit=" + EVENTS_PAGE);
        older = page.concat(older);
        moreOlder = page.length === EVENTS_PAGE;
        renderEvents();
      } catch (e) {
        notice(msg, "Loading older history failed: " + e.message, "error");
      } finally {
        btnOlder.disabled = false;
      }
    } }, "Show older");
    const problemsList = h("ul", { class: "problems" });
    const problemsCard = h("section", { class: "card problems-card", id: "problems", hidden: true }, h("h2", null, "Recent warnings and errors"), problemsList);

    // Charts: the pipe's (or one table's) series over the chosen range, fetched every 10 s.
    let chartRange = "1h";
    let chartTable = "";
    let chartsAt = 0;
    const chartsBody = h("div", { class: "charts", id: "charts" });
    const chartTableSel = h("select", { "aria-label": "chart subject", onchange: () => {
      chartTable = chartTableSel.value;
      refreshCharts(true);
    } }, h("option", { value: "" }, "whole pipe"));
    const rangeButtons = Object.keys(RANGES).map((r) => h("button", { type: "button", class: "secondary small" + (r === chartRange ? " active" : ""), "data-range": r, onclick: () => {
      chartRange = r;
      rangeButtons.forEach((b) => b.classList.toggle("active", b.dataset.range === r));
      refreshCharts(true);
    } }, RANGES[r].label));
    async function refreshCharts(force) {
      if (!force && Date.now() - chartsAt < CHART_REFRESH_MS) return;
      chartsAt = Date.now();
      const defs = chartTable ? TABLE_CHARTS : PIPE_CHARTS;
      const q = (m) => pipePath(name) + "/series?metric=" + m + "&range=" + chartRange + (chartTable ? "&table=" + enc(chartTable) : "");
      try {
        const res = await Promise.all(defs.map((d) => api("GET", q(d.metric))));
        chartsBody.replaceChildren(...defs.map((d, i) => chart(d, res[i], RANGES[chartRange].secs)));
      } catch (e) {
        if (e.status === 0 || e.status === 401 || e.status === 404) throw e;
        chartsBody.replaceChildren(h("p", { class: "notice error" }, "Charts unavailable: " + e.message));
      }
    }
    function fillChartTables() {
      const want = [""].concat(pipe.tables.map((t) => t.destination));
      const have = [...chartTableSel.options].map((o) => o.value);
      if (want.join("\n") === have.join("\n")) return;
      chartTableSel.replaceChildren(...want.map((v) => h("option", { value: v }, v || "whole pipe")));
      if (!want.includes(chartTable)) chartTable = "";
      chartTableSel.value = chartTable;
    }
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

    // Edit source (a Paused or Failed pipe): PATCH /source with the fields changed; a
    // password left blank stays as stored. Then Resume (Paused) or Retry (Failed).
    const srcMsg = h("div", { class: "notice", hidden: true, id: "edit-source-msg" });
    const srcAfter = h("div", { class: "actions", hidden: true, id: "edit-source-next" });
    const sf = {}; // name → input
    const sInput = (name, label, attrs, help) => {
      const inp = attrs.kind === "select"
        ? h("select", { name }, attrs.options.map(([v, l]) => h("option", { value: v }, l)))
        : attrs.kind === "textarea"
          ? h("textarea", { name, rows: 3, class: "code", spellcheck: "false", placeholder: attrs.placeholder || "" })
          : h("input", { name, type: attrs.kind || "text", placeholder: attrs.placeholder || "", autocomplete: attrs.kind === "password" ? "new-password" : "off", spellcheck: "false" });
      sf[name] = inp;
      if (attrs.kind === "checkbox") return h("label", { class: "check" }, inp, " ", label);
      return h("label", { class: "field" + (attrs.wide ? " wide" : "") }, h("span", null, label, help ? h("small", { class: "muted" }, help) : null), inp);
    };
    const srcSsh = h("input", { type: "checkbox", name: "ssh", onchange: () => (srcSshFields.hidden = !srcSsh.checked) });
    const srcSshFields = h("div", { class: "grid-fields" },
      sInput("ssh.host", "SSH host", {}),
      sInput("ssh.port", "SSH port", { kind: "number" }),
      sInput("ssh.user", "SSH user", {}),
      sInput("ssh.password", "SSH password", { kind: "password", placeholder: "unchanged" }, "blank = unchanged"),
      sInput("ssh.private_key", "SSH private key", { kind: "textarea", placeholder: "unchanged", wide: true }, "blank = unchanged; a new key replaces a stored password"),
      sInput("ssh.known_host_key", "Server host key", { placeholder: "ssh-ed25519 AAAA…", wide: true }, "empty = none"),
      sInput("ssh.insecure_skip_host_key_check", "Do not check the host key (tests only)", { kind: "checkbox" }));
    const srcSave = h("button", { type: "submit" }, "Save source");
    const srcForm = h(
      "form",
      { class: "edit-source", novalidate: true },
      h("p", { class: "muted" }, "How the pipe reaches its source (e.g. another server after a fail-over): CDC continues from the checkpoint there on resume. Fields left as they are do not change; a blank password stays as stored."),
      h("div", { class: "grid-fields" },
        sInput("host", "Host", {}),
        sInput("port", "Port", { kind: "number" }),
        sInput("user", "User", {}),
        sInput("password", "Password", { kind: "password", placeholder: "unchanged" }, "blank = unchanged"),
        sInput("tls_mode", "TLS", { kind: "select", options: TLS_MODES.map((m) => [m, m]) }),
        sInput("tls_ca_cert", "TLS CA certificate (PEM)", { kind: "textarea", placeholder: "unchanged (verify_ca / verify_identity)", wide: true }, "blank = unchanged"),
        sInput("replication_mechanism", "Replication mechanism", { kind: "select", options: MECHANISMS }),
        sInput("heartbeat_table", "Heartbeat table", { placeholder: "schema.table (empty = none)" })),
      h("label", { class: "check" }, srcSsh, " Through an SSH tunnel"),
      srcSshFields,
      h("div", { class: "actions" }, srcSave, h("button", { type: "button", class: "secondary", onclick: () => (srcCard.hidden = true) }, "Close")),
      srcMsg,
      srcAfter
    );
    const srcCard = h("section", { class: "card", id: "edit-source", hidden: true }, h("h2", null, "Edit source"), srcForm);
    function fillSource() {
      const s = pipe.source;
      sf.host.value = s.host;
      sf.port.value = s.port;
      sf.user.value = s.user;
      sf.password.value = "";
      sf.tls_mode.value = s.tls_mode;
      sf.tls_ca_cert.value = "";
      sf.replication_mechanism.value = s.replication_mechanism;
      sf.heartbeat_table.value = s.heartbeat_table || "";
      const t = s.ssh;
      srcSsh.checked = !!t;
      srcSshFields.hidden = !t;
      sf["ssh.host"].value = t ? t.host : "";
      sf["ssh.port"].value = t ? t.port : 22;
      sf["ssh.user"].value = t ? t.user : "";
      sf["ssh.password"].value = "";
      sf["ssh.private_key"].value = "";
      sf["ssh.known_host_key"].value = t && t.known_host_key ? t.known_host_key : "";
      sf["ssh.insecure_skip_host_key_check"].checked = !!(t && t.insecure_skip_host_key_check);
      notice(srcMsg, "");
      srcAfter.hidden = true;
    }
    function sourcePatch() {
      const s = pipe.source;
      const p = {};
      if (sf.host.value.trim() !== s.host) p.host = sf.host.value.trim();
      if (Number(sf.port.value) !== s.port) p.port = Number(sf.port.value);
      if (sf.user.value !== s.user) p.user = sf.user.value;
      if (sf.password.value) p.password = sf.password.value;
      if (sf.tls_mode.value !== s.tls_mode || sf.tls_ca_cert.value.trim()) {
        p.tls = { mode: sf.tls_mode.value };
        if (sf.tls_ca_cert.value.trim()) p.tls.ca_cert = sf.tls_ca_cert.value;
      }
      if (sf.replication_mechanism.value !== s.replication_mechanism) p.replication_mechanism = sf.replication_mechanism.value;
      if (sf.heartbeat_table.value.trim() !== (s.heartbeat_table || "")) p.heartbeat_table = sf.heartbeat_table.value.trim();
      const t = s.ssh;
      if (!srcSsh.checked) {
        if (t) p.ssh = null;
      } else {
        const q = {};
        const v = (k) => sf["ssh." + k].value;
        if (!t || v("host").trim() !== t.host) q.host = v("host").trim();
        if (!t || Number(v("port")) !== t.port) q.port = Number(v("port") || 22);
        if (!t || v("user") !== t.user) q.user = v("user");
        if (v("password")) q.password = v("password");
        if (v("private_key").trim()) q.private_key = v("private_key");
        if (v("known_host_key").trim() !== ((t && t.known_host_key) || "")) q.known_host_key = v("known_host_key").trim();
        const insecure = sf["ssh.insecure_skip_host_key_check"].checked;
        if (insecure !== !!(t && t.insecure_skip_host_key_check)) q.insecure_skip_host_key_check = insecure;
        if (Object.keys(q).length) p.ssh = q;
      }
      return p;
    }
    srcForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!pipe) return;
      const patch = sourcePatch();
      if (!Object.keys(patch).length) return notice(srcMsg, "Nothing changed.", "");
      srcSave.disabled = true;
      notice(srcMsg, "Saving…");
      try {
        const s = await api("PATCH", pipePath(name) + "/source", patch);
        pipe.source = s;
        fillSource();
        notice(srcMsg, "Source saved: " + s.user + "@" + s.host + ":" + s.port + (s.ssh ? " through SSH " + s.ssh.user + "@" + s.ssh.host + ":" + s.ssh.port : "") + ", replication " + s.replication_mechanism + ".", "ok");
        const failed = pipe.state === "Failed";
        srcAfter.replaceChildren(
          h("button", { type: "button", onclick: () => act(failed ? "Retry" : "Resume", () => api("POST", pipePath(name) + "/resume"), (r) => (failed ? "Retrying" : "Resumed") + ": the pipe is " + r.state + ".") }, failed ? "Retry" : "Resume"),
          failed ? h("button", { type: "button", class: "secondary", onclick: () => act("Resync", () => api("POST", pipePath(name) + "/resync", { tables: [] }), (r) => "Resync started: the pipe is " + r.state + ".") }, "Resync all") : null,
          h("span", { class: "muted" }, failed ? "Retry runs Setup again when it never finished; a pipe failed later needs a resync." : "CDC continues from the checkpoint on the source as it is now.")
        );
        srcAfter.hidden = false;
      } catch (err) {
        notice(srcMsg, err.message, "error");
      } finally {
        srcSave.disabled = false;
      }
      refreshSoon();
    });
    const btnEditSource = h("button", { type: "button", class: "secondary", onclick: () => {
      if (!pipe) return;
      fillSource();
      srcCard.hidden = false;
      srcCard.scrollIntoView({ block: "nearest" });
    } }, "Edit source…");

    // Settings form: inputs follow the live values until the user edits them.
    const settingFields = [
      ["sync_interval_ms", "Sync interval (ms)", "longest time a CDC batch collects changes"],
      ["pull_batch_size", "Pull batch size", "most changes a CDC batch collects"],
      ["snapshot_rows_per_chunk", "Snapshot rows per chunk", "rows per snapshot query and insert"],
      ["rows_per_partition", "Rows per partition", "rows per snapshot partition (a key range)"],
      ["parallel_partitions", "Parallel partitions", "partitions of one table read at once"],
      ["parallel_tables", "Parallel tables", "tables copied at once"],
      ["heartbeat_interval_ms", "Heartbeat interval (ms)", "how often source.heartbeat_table is written"],
      ["verify_rows_per_second", "Verify rows / s", "most source rows a verification scans per second"],
      ["verify_interval_hours", "Verify every (hours)", "scheduled verification of every table; 0 = only on request", 0],
    ];
    const inputs = {};
    const dirty = new Set();
    const settingsMsg = h("div", { class: "notice", hidden: true });
    const settingsForm = h(
      "form",
      { class: "settings" },
      settingFields.map(([k, label, hint, min]) => {
        const inp = h("input", { type: "number", min: min === undefined ? 1 : min, step: 1, required: true, name: k });
        inp.addEventListener("input", () => dirty.add(k));
        inputs[k] = inp;
        return h("label", { title: hint }, h("span", null, label), inp);
      }),
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Apply"), h("button", { type: "button", class: "secondary", onclick: () => { dirty.clear(); fillSettings(true); notice(settingsMsg, ""); } }, "Reset"))
    );
    settingsForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      const patch = {};
      for (const [k, , , min] of settingFields) {
        const v = Number(inputs[k].value);
        const lo = min === undefined ? 1 : min;
        if (inputs[k].value.trim() === "" || !Number.isInteger(v) || v < lo) return notice(settingsMsg, k + " must be a whole number of at least " + lo + ".", "error");
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
        h("div", { class: "actions" }, btnPause, btnResume, btnEditSource, btnResyncAll, btnDelete)
      ),
      msg,
      errorBox,
      problemsCard,
      srcCard,
      h(
        "div",
        { class: "cards" },
        h("section", { class: "card" }, h("h2", null, "Overview"), overview),
        h("section", { class: "card" }, h("h2", null, "Settings ", h("span", { class: "muted small" }, "(applied live, from the next batch)")), settingsForm, settingsMsg)
      ),
      h(
        "section",
        { class: "card" },
        h("div", { class: "section-head" }, h("h2", null, "Charts"), chartTableSel, h("span", { class: "spacer" }), h("div", { class: "actions" }, rangeButtons)),
        chartsBody
      ),
      h(
        "section",
        { class: "card scroll-x" },
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
      h("section", { class: "card scroll-x" }, h("div", { class: "section-head" }, h("h2", null, "Verification"), h("span", { class: "spacer" }), h("div", { class: "actions" }, btnVerify, btnVerifyRepair)), verifyMsg, verifyBody),
      h("section", { class: "card scroll-x" }, h("div", { class: "section-head" }, h("h2", null, "History"), eventsCount), h("table", { class: "grid", id: "history" },
        h("thead", null, h("tr", null, ["Time", "From", "To", "Reason"].map((t) => h("th", null, t)))), eventsBody), h("div", { class: "actions" }, btnOlder))
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
            h("td", { class: "row-actions" }, t.state === "Error" ? h("button", {
              type: "button",
              class: "small",
              disabled: !ALLOWED.resync.includes(pipe.state),
              title: "Copy " + t.destination + " again (into " + t.destination + "_resync, swapped in when complete)",
              onclick: () => act("Resync " + t.destination, () => api("POST", pipePath(name) + "/resync", { tables: [t.destination] }),
                (r) => "Resync of " + t.destination + " started: the pipe is " + r.state + "."),
            }, "Resync") : null, " ", h("button", {
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
      setAllowed(btnEditSource, "source");
      srcSave.disabled = !ALLOWED.source.includes(p.state);
      srcSave.title = srcSave.disabled ? "The source can change while the pipe is Paused or Failed (now " + p.state + ")" : "";
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
        ["Worker", p.worker ? h("code", null, p.worker) : "— " + (p.placement ? "(" + p.placement + ")" : "(no worker holds it now)")],
        ["Checkpoint", cp ? h("code", null, cp.binlog_file + ":" + cp.binlog_pos) : "— (none yet)"],
        ["GTID set", cp && cp.gtid_set ? h("code", { class: "wrap" }, cp.gtid_set) : "—"],
        ["Source", h("code", null, p.source.user + "@" + p.source.host + ":" + p.source.port), h("span", { class: "muted" }, "  server id " + p.source.server_id)],
        ["Destination", h("code", null, p.destination.url), h("span", { class: "muted" }, "  user " + p.destination.user + ", database "), h("code", null, p.destination.database)],
        ["Created", timeCell(p.created_at)],
        ["Updated", timeCell(p.updated_at)],
      ];
      overview.replaceChildren(...rows.flatMap(([k, ...v]) => [h("dt", null, k), h("dd", null, ...v)]));
      fillSettings(false);
      fillChartTables();
      renderTables();
    }

    function mergedEvents() {
      const m = new Map();
      for (const e of older.concat(recent)) m.set(e.id, e);
      return [...m.values()].sort((a, b) => a.id - b.id);
    }

    function renderEvents() {
      const events = mergedEvents();
      btnOlder.hidden = !moreOlder;
      eventsCount.textContent = events.length + " most recent event" + (events.length === 1 ? "" : "s") + ", newest first";
      if (!events.length) eventsBody.replaceChildren(h("tr", null, h("td", { colspan: 4, class: "empty" }, "No events yet.")));
      else eventsBody.replaceChildren(
        ...events
          .slice()
          .reverse()
          .map((e) => h("tr", null, h("td", { class: "muted nowrap" }, timeCell(e.at)), h("td", null, e.from_state ? badge(e.from_state) : "—"), h("td", null, badge(e.to_state)), h("td", { class: "wrap" }, e.reason)))
      );
      renderProblems(events);
    }

    // Recent warnings and errors: the pipe's warning and error, its tables' errors, and the
    // history lines about failures, retries and alerts (newest first).
    function renderProblems(events) {
      const items = [];
      if (pipe && pipe.warning) items.push(h("li", { class: "warn" }, h("strong", null, "Warning: "), pipe.warning));
      if (pipe && pipe.error) items.push(h("li", null, h("strong", null, "Error: "), pipe.error));
      for (const t of pipe ? pipe.tables : []) if (t.error) items.push(h("li", null, h("strong", null, t.destination + ": "), t.error));
      const bad = events.filter((e) => e.to_state === "Failed" || PROBLEM.test(e.reason)).slice(-10).reverse();
      for (const e of bad) items.push(h("li", { class: "muted-item" }, timeCell(e.at), " ", e.reason));
      problemsCard.hidden = !items.length;
      problemsList.replaceChildren(...items);
    }

    let gone = false; // the pipe does not exist: "no such pipe" is shown
    async function refresh() {
      if (gone) return;
      try {
        const [p, ev, vr] = await Promise.all([
          api("GET", pipePath(name)),
          api("GET", pipePath(name) + "/events?limit=" + EVENTS_PAGE),
          api("GET", pipePath(name) + "/verifications"),
        ]);
        renderPipe(p);
        recent = ev;
        if (!older.length) moreOlder = ev.length === EVENTS_PAGE;
        renderEvents();
        renderVerification(vr);
        await refreshCharts(false);
      } catch (e) {
        if (e.status === 404) {
          gone = true;
          main.replaceChildren(
            h("div", { class: "section-head" }, h("a", { href: "#/", class: "back" }, "← Pipes"), h("h1", null, name)),
            h("div", { class: "error-box", id: "no-such-pipe" }, "No such pipe: there is no pipe named “" + name + "” on this server (deleted, or a mistyped address)."),
            h("p", null, h("a", { href: "#/" }, "See all pipes"), " or ", h("a", { href: "#/new" }, "create a pipe"), ".")
          );
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
