// Thresher dashboard: live updates from /events, actions through the JSON API, the task grid, logs.
// Plain JavaScript, no build step. Text from the server is only ever set with textContent.
"use strict";
(() => {
  const body = document.body;
  const page = body.dataset.page || "";
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  // ------------------------------------------------------------------ small helpers
  function toast(title, text, bad) {
    const box = document.createElement("div");
    box.className = "toast" + (bad ? " bad" : "");
    box.setAttribute("role", bad ? "alert" : "status");
    const strong = document.createElement("strong");
    strong.textContent = title;
    box.append(strong);
    if (text) box.append(document.createTextNode(text));
    $("#toasts").append(box);
    setTimeout(() => box.remove(), bad ? 12000 : 4000);
  }

  // "1 job", "2 jobs"; a confirmation's "{n} job(s)" said for n ("Kill 1 job?").
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const counted = (text, n) => text.replace("{n}", String(n)).replace(/\(s\)/g, n === 1 ? "" : "s");

  function ask(text) {
    const dialog = $("#confirm");
    if (!dialog || !dialog.showModal) return Promise.resolve(window.confirm(text));
    $("#confirm-text").textContent = text;
    dialog.returnValue = "";
    dialog.showModal();
    $("#confirm-ok").focus();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    });
  }

  class ApiError extends Error {
    constructor(status, data) {
      super((data && data.detail) || `HTTP ${status}`);
      this.status = status;
      this.errors = (data && data.errors) || [];
    }
    explain() {
      const fields = this.errors.map((e) => `${e.field}: ${e.message}`).join("; ");
      return this.message + (fields ? ` (${fields})` : "");
    }
  }

  // One refusal of a bulk action, one line: the server's reason names the job or task already
  // ("job 12 already failed: nothing to kill"); else the id goes in front.
  function refusalLine(kind, id, err) {
    const text = err instanceof ApiError ? err.explain() : String(err);
    return new RegExp(`\\b${kind} ${id}\\b`).test(text) ? text : `${kind} ${id}: ${text}`;
  }

  async function api(method, url, payload) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json", "X-CSRF-Token": csrf } };
    if (payload !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    const response = await fetch(url, init);
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (response.status === 401) { loginAgain(); }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  function loginAgain() {
    const next = location.pathname + location.search;
    location.href = "/login?next=" + encodeURIComponent(next);
  }

  // Runs fn at most once per gap; want(gap) asks for a run no later than `gap` after the last one
  // (a sooner request moves a later one forward), so "soon" and "some time" share one timer.
  function refresher(fn) {
    let last = 0, timer = null, due = 0, running = false, again = 0;
    const run = async () => {
      timer = null;
      if (running) { again = again || 1500; return; }
      running = true; last = Date.now();
      try { await fn(); } catch (err) { console.warn(err); }
      running = false;
      if (again) { const gap = again; again = 0; want(gap); }
    };
    const want = (gap) => {
      if (running) { again = again ? Math.min(again, gap) : gap; return; }
      const at = Math.max(Date.now(), last + gap);
      if (timer && due <= at) return;
      clearTimeout(timer);
      due = at;
      timer = setTimeout(run, at - Date.now());
    };
    return want;
  }

  function throttle(fn, gapMs) {
    let last = 0, timer = null, running = false, again = false;
    const run = async () => {
      timer = null;
      if (running) { again = true; return; }
      running = true; last = Date.now();
      try { await fn(); } catch (err) { console.warn(err); }
      running = false;
      if (again) { again = false; schedule(); }
    };
    const schedule = () => {
      if (timer) return;
      timer = setTimeout(run, Math.max(0, last + gapMs - Date.now()));
    };
    return schedule;
  }

  function formatTimes(root) {
    const today = new Date().toDateString();
    $$("time[datetime]", root).forEach((el) => {
      const d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) return;
      el.title = d.toLocaleString();
      el.textContent = d.toDateString() === today
        ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
        : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
    });
  }

  // ------------------------------------------------------------------ live part of the page
  const live = $("#live");
  const hooks = [];  // run after every swap of #live

  async function refreshLive() {
    if (!live) return;
    const active = document.activeElement;
    if (active && live.contains(active) && active.tagName === "INPUT" && active.type !== "checkbox") {
      setTimeout(requestRefresh, 1500);  // do not pull an input away from somebody typing in it
      return;
    }
    const sep = location.search ? "&" : "?";
    const response = await fetch(location.pathname + location.search + sep + "fragment=1",
                                 { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (response.status === 401) return loginAgain();
    if (!response.ok) return;
    const html = await response.text();
    const picked = new Set($$("input.pick:checked", live).map((el) => el.value));
    live.innerHTML = html;
    $$("input.pick", live).forEach((el) => { el.checked = picked.has(el.value); });
    afterSwap();
  }

  function afterSwap() {
    formatTimes(live || document);
    hooks.forEach((fn) => fn());
  }

  // "soon" when what the page shows changed state; "slow" for counts and times that events already
  // painted or that can wait: an open tab costs the server far less than a request per second.
  const refreshLater = refresher(refreshLive);
  const refreshGap = page === "node" ? 5000 : 1500;
  const SLOW_MS = 10000;
  const requestRefresh = () => refreshLater(refreshGap);
  const slowRefresh = () => refreshLater(SLOW_MS);

  // Repaint a progress bar (the progress() macro's markup) from task counts by state.
  function paintBar(holder, counts, total) {
    if (!holder) return;
    const bar = $(".bar", holder), legendBox = $(".bar-legend", holder);
    if (!bar || !legendBox) return;
    const n = (k) => counts[k] || 0;
    const done = n("succeeded") + n("skipped"), running = n("running"), failed = n("failed"), killed = n("killed");
    const waiting = total - done - running - failed - killed, t = total || 1;
    const pct = (v) => (100 * v / t).toFixed(3) + "%";
    const seg = (cls) => $(".seg." + cls, bar);
    if (seg("done")) seg("done").style.width = pct(done);
    if (seg("running")) seg("running").style.width = pct(running);
    if (seg("failed")) seg("failed").style.width = pct(failed);
    if (seg("killed")) seg("killed").style.width = pct(killed);
    bar.title = `${done} done · ${running} running · ${failed} failed · ${killed} killed · ${waiting} waiting of ${total}`;
    const put = (cls, v) => { const el = $(".k-" + cls, legendBox); if (el) el.textContent = String(v); };
    put("done", done); put("running", running); put("failed", failed); put("killed", killed); put("waiting", waiting);
    const killedKey = $(".k-killed", legendBox);
    if (killedKey) killedKey.hidden = killed === 0;
  }

  // ------------------------------------------------------------------ actions
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-action]");
    if (!button) return;
    event.preventDefault();
    if (button.dataset.confirm && !(await ask(button.dataset.confirm))) return;
    let payload = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
    if (button.dataset.priorityFrom) {
      const value = parseInt(($("#" + button.dataset.priorityFrom) || {}).value, 10);
      payload = { priority: isNaN(value) ? -1 : value };
    }
    button.disabled = true;
    try {
      await api(button.dataset.method || "POST", button.dataset.action, payload);
      toast(button.dataset.done || "Done", "");
      if (button.dataset.then) { location.href = button.dataset.then; return; }  // the page's record is gone
      requestRefresh();
    } catch (err) {
      if (err instanceof ApiError) toast(`Refused (${err.status})`, err.explain(), true);
      else toast("Could not reach the server", String(err), true);
    } finally {
      button.disabled = false;
    }
  });

  // ------------------------------------------------------------------ forms that change a record
  // <form data-api-form data-method data-url>: each named input becomes a field of the body (numbers
  // as numbers; a <select> sends its value); an empty one is left out (data-empty="omit") or sent as
  // null (data-empty="null": a cap removed). The server checks everything and its refusal names the field.
  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("form[data-api-form]");
    if (!form) return;
    event.preventDefault();
    const payload = {};
    for (const input of $$("input[name], select[name]", form)) {
      if (input.type === "checkbox") { payload[input.name] = input.checked; continue; }
      const raw = input.value.trim();
      if (input.dataset.list !== undefined) {  // a list (a node's tags): words split by spaces or commas
        payload[input.name] = raw.split(/[\s,]+/).filter(Boolean);
        continue;
      }
      if (raw === "") {
        if (input.dataset.empty === "null") payload[input.name] = null;
        continue;
      }
      payload[input.name] = input.type === "number" ? Number(raw) : raw;
    }
    const button = $("button[type=submit]", form);
    if (button) button.disabled = true;
    try {
      const answer = await api(form.dataset.method || "POST", form.dataset.url, payload);
      toast(form.dataset.done || "Done", "");
      const secretBox = form.dataset.secretTo && document.getElementById(form.dataset.secretTo);
      if (secretBox && answer && answer.secret) {  // a token's secret, shown this once (outside the live part)
        $("code.secret", secretBox).textContent = answer.secret;
        secretBox.hidden = false;
      }
      if (!live || !live.contains(form)) form.reset();
      if (document.activeElement) document.activeElement.blur();
      requestRefresh();
    } catch (err) {
      if (err instanceof ApiError) toast(`Refused (${err.status})`, err.explain(), true);
      else toast("Could not reach the server", String(err), true);
    } finally {
      if (button) button.disabled = false;
    }
  });

  // ------------------------------------------------------------------ jobs list: select several and act
  if (page === "jobs") {
    const bulk = $("#bulk");
    const selected = () => $$("input.pick:checked", live).map((el) => parseInt(el.value, 10));
    const update = () => {
      const ids = selected();
      bulk.hidden = ids.length === 0;
      $("#bulk-count").textContent = `${ids.length} selected`;
      const all = $("#check-all", live);
      const boxes = $$("input.pick", live);
      if (all) all.checked = boxes.length > 0 && ids.length === boxes.length;
    };
    live.addEventListener("change", (event) => {
      if (event.target.id === "check-all") $$("input.pick", live).forEach((el) => { el.checked = event.target.checked; });
      update();
    });
    hooks.push(update);
    bulk.addEventListener("click", async (event) => {
      const button = event.target.closest("[data-bulk]");
      if (!button) return;
      const ids = selected();
      const verb = button.dataset.bulk;
      if (!ids.length) return;
      if (button.dataset.confirm && !(await ask(counted(button.dataset.confirm, ids.length)))) return;
      let payload;
      if (verb === "priority") {
        const value = parseInt($("#bulk-priority").value, 10);
        if (isNaN(value)) return toast("Refused", "type a priority from 0 to 1000 first", true);
        payload = { priority: value };
      }
      const refused = [];
      const many = verb === "archive" || verb === "delete";  // POST /jobs/archive {ids}: one job a call, one refusal a line
      for (const id of ids) {
        try { await api("POST", many ? `/api/v1/jobs/${verb}` : `/api/v1/jobs/${id}/${verb}`, many ? { ids: [id] } : payload); }
        catch (err) { refused.push(refusalLine("job", id, err)); }
      }
      const ok = ids.length - refused.length;
      if (ok) toast(`${verb}: ${plural(ok, "job")} done`, "");
      if (refused.length) toast(`Refused for ${plural(refused.length, "job")}`, refused.join("\n"), true);
      requestRefresh();
    });
    update();
  }

  // ------------------------------------------------------------------ job page: the task grid
  let grid = null;
  if (page === "job") grid = setupGrid($("#task-grid"));

  function setupGrid(canvas) {
    if (!canvas) return null;
    const jobId = canvas.dataset.jobId;
    const tip = $("#tip");
    let data = null, layout = null, index = null;
    const picked = new Set();  // ids of the selected tasks (kept across reloads while their tasks exist)
    let anchor = -1, dragFrom = -1, dragged = false;
    const colors = {};
    const css = getComputedStyle(document.documentElement);
    const color = (state) => colors[state] || (colors[state] = css.getPropertyValue("--s-" + state).trim() || "#888");

    async function load() {
      const response = await fetch(`/ui/jobs/${jobId}/grid`, { credentials: "same-origin" });
      if (response.status === 401) return loginAgain();
      if (!response.ok) return;
      data = await response.json();
      index = new Map(data.id.map((id, k) => [id, k]));
      for (const id of Array.from(picked)) if (!index.has(id)) picked.delete(id);
      draw();
      showPicked();
      legend();
      layerBars();
    }

    // An event's changed cells for this job: applied when they follow the version we hold,
    // otherwise (a missed event, or too many changes) the whole grid is read again.
    function apply(entry) {
      if (!data) return;
      if (entry.v <= data.version) return;
      if (!entry.cells || entry.from !== data.version) return reload();
      for (const [id, code, node] of entry.cells) {
        const k = index.get(id);
        if (k === undefined) return reload();
        data.state[k] = code;
        data.node[k] = node;
      }
      data.version = entry.v;
      draw();
      legend();
      layerBars();
    }

    function layerBars() {
      if (!data || !data.id.length) return;  // no task rows to count (an archived job): keep the server's bars
      const per = data.layers.map(() => ({ counts: {}, total: 0 }));
      for (let k = 0; k < data.id.length; k++) {
        const slot = per[data.layer[k]], name = data.states[data.state[k]];
        slot.counts[name] = (slot.counts[name] || 0) + 1;
        slot.total++;
      }
      per.forEach((slot, i) => paintBar($(`tr[data-layer-index="${i}"] .progress-col`, live), slot.counts, slot.total));
    }

    function legend() {
      const box = $("#grid-legend");
      if (!box || !data) return;
      const counts = new Array(data.states.length).fill(0);
      data.state.forEach((s) => counts[s]++);
      box.replaceChildren();
      data.states.forEach((name, i) => {
        if (!counts[i]) return;
        const item = document.createElement("span");
        const sw = document.createElement("i");
        sw.style.background = color(name);
        item.append(sw, document.createTextNode(`${name} ${counts[i]}`));
        box.append(item);
      });
    }

    function draw() {
      if (!data) return;
      const n = data.id.length;
      const width = Math.max(200, canvas.parentElement.clientWidth - 2);
      const cell = n > 4000 ? 7 : n > 1500 ? 10 : n > 300 ? 14 : 18;
      const gap = n > 4000 ? 1 : 2;
      const pitch = cell + gap;
      const cols = Math.max(1, Math.floor((width + gap) / pitch));
      const multi = data.layers.length > 1;
      const labelH = multi ? 20 : 0;
      const blocks = [];
      let y = 0, start = 0;
      for (let l = 0; l < data.layers.length; l++) {
        let count = 0;
        while (start + count < n && data.layer[start + count] === l) count++;
        const rows = Math.ceil(count / cols);
        blocks.push({ layer: l, start, count, y0: y + labelH, labelY: y });
        y += labelH + rows * pitch + (multi ? 8 : 0);
        start += count;
      }
      const height = Math.max(pitch, y);
      const dpr = window.devicePixelRatio || 1;
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
      canvas.style.width = width + "px";
      canvas.style.height = height + "px";
      const ctx = canvas.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, width, height);
      const fills = data.states.map(color);
      ctx.font = `600 12px ${css.getPropertyValue("--sans")}`;
      ctx.textBaseline = "middle";
      for (const b of blocks) {
        if (multi) {
          ctx.fillStyle = css.getPropertyValue("--muted").trim() || "#888";
          ctx.fillText(`${data.layers[b.layer]} · ${plural(b.count, "task")}`, 0, b.labelY + 9);
        }
        for (let i = 0; i < b.count; i++) {
          const k = b.start + i;
          ctx.fillStyle = fills[data.state[k]];
          const cx = (i % cols) * pitch, cy = b.y0 + Math.floor(i / cols) * pitch;
          ctx.fillRect(cx, cy, cell, cell);
          if (picked.has(data.id[k])) {
            ctx.strokeStyle = css.getPropertyValue("--text").trim() || "#fff";
            ctx.lineWidth = 2;
            ctx.strokeRect(cx + 1, cy + 1, cell - 2, cell - 2);
          }
        }
      }
      layout = { blocks, cols, pitch, cell };
    }

    function hit(event) {
      if (!layout || !data) return -1;
      const rect = canvas.getBoundingClientRect();
      const x = event.clientX - rect.left, y = event.clientY - rect.top;
      const col = Math.floor(x / layout.pitch);
      if (col < 0 || col >= layout.cols || x % layout.pitch > layout.cell) return -1;
      for (const b of layout.blocks) {
        const row = Math.floor((y - b.y0) / layout.pitch);
        if (y < b.y0 || (y - b.y0) % layout.pitch > layout.cell) continue;
        const i = row * layout.cols + col;
        if (i >= 0 && i < b.count) return b.start + i;
      }
      return -1;
    }

    canvas.addEventListener("mousemove", (event) => {
      const k = hit(event);
      if (k < 0) { tip.hidden = true; canvas.style.cursor = "default"; return; }
      canvas.style.cursor = "pointer";
      const node = data.node[k] ? `\nnode ${data.node[k]}` : "";
      tip.textContent = `${data.layers[data.layer[k]]} · task ${data.id[k]}\nframes ${data.frames[k]}\n${data.states[data.state[k]]}${node}`;
      tip.hidden = false;
      const x = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
      const y = Math.min(event.clientY + 14, window.innerHeight - tip.offsetHeight - 8);
      tip.style.left = x + "px";
      tip.style.top = y + "px";
    });
    canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
    // Selecting tasks: drag across cells, Shift-click a range from the last cell picked, Ctrl/Cmd-click
    // one cell; a plain click opens the task when nothing is selected, else toggles the cell.
    function pickRange(a, b, on) {
      for (let k = Math.min(a, b); k <= Math.max(a, b); k++) on ? picked.add(data.id[k]) : picked.delete(data.id[k]);
    }
    function showPicked() {
      const bar = $("#grid-select");
      if (!bar) return;
      bar.hidden = picked.size === 0;
      $("#grid-count").textContent = `${picked.size} selected`;
    }
    canvas.addEventListener("mousedown", (event) => {
      if (event.button !== 0) return;
      dragFrom = hit(event); dragged = false;
      if (dragFrom >= 0) event.preventDefault();  // no text selection while dragging
    });
    canvas.addEventListener("mousemove", (event) => {
      if (dragFrom < 0 || !(event.buttons & 1)) return;
      const k = hit(event);
      if (k < 0 || (k === dragFrom && !dragged)) return;
      if (!dragged && !(event.ctrlKey || event.metaKey || event.shiftKey)) picked.clear();
      dragged = true;
      pickRange(dragFrom, k, true);
      anchor = k;
      draw(); showPicked();
    });
    canvas.addEventListener("click", (event) => {
      const k = hit(event);
      const wasDrag = dragged;
      dragFrom = -1; dragged = false;
      if (wasDrag || k < 0) return;
      if (event.shiftKey && anchor >= 0) pickRange(anchor, k, true);
      else if (event.ctrlKey || event.metaKey || picked.size) {
        const id = data.id[k];
        picked.has(id) ? picked.delete(id) : picked.add(id);
      } else return void (location.href = `/tasks/${data.id[k]}`);
      anchor = k;
      draw(); showPicked();
    });
    const bar = $("#grid-select");
    if (bar) bar.addEventListener("click", async (event) => {
      const button = event.target.closest("[data-grid-act]");
      if (!button) return;
      const verb = button.dataset.gridAct, ids = Array.from(picked);
      if (verb === "clear") { picked.clear(); draw(); showPicked(); return; }
      if (!ids.length) return;
      if (button.dataset.confirm && !(await ask(counted(button.dataset.confirm, ids.length)))) return;
      const refused = [];
      button.disabled = true;
      for (const id of ids) {
        try { await api("POST", `/api/v1/tasks/${id}/${verb}`); }
        catch (err) { refused.push(refusalLine("task", id, err)); }
      }
      button.disabled = false;
      const ok = ids.length - refused.length;
      if (ok) toast(`${verb}: ${plural(ok, "task")} done`, "");
      if (refused.length) toast(`Refused for ${plural(refused.length, "task")}`, "\n" + refused.join("\n"), true);
      picked.clear(); showPicked();
      requestRefresh(); reload();
    });
    window.addEventListener("resize", throttle(async () => draw(), 150));
    document.addEventListener("thresher:theme", () => {  // keys.js switched the theme: colours anew
      for (const k of Object.keys(colors)) delete colors[k];
      draw();
    });
    const reload = throttle(load, 2000);
    hooks.push(layerBars);
    load();
    return { refresh: reload, apply };
  }

  // ------------------------------------------------------------------ job page: go to a frame
  // "Frame 1042 looks wrong": the task that renders it (GET /jobs/{id}/tasks?frame=N) opens; where
  // several do (layers, tiles, wedge values) they are listed as links, and none is said so.
  if (page === "job") setupFrameFind($("#frame-find"));

  // A task's part as `thresher log --frame` says it: "tile 1,0" or "wedge 64".
  function partLabel(part) {
    return "tile" in part ? `tile ${part.tile.join(",")}` : `wedge ${JSON.stringify(part.wedge)}`;
  }

  function setupFrameFind(form) {
    if (!form) return;
    const said = $("#frame-found", form);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const frame = form.elements.frame.value.trim();
      said.replaceChildren();
      try {
        const found = await api("GET", `/api/v1/jobs/${form.dataset.jobId}/tasks?frame=${encodeURIComponent(frame)}&limit=50`);
        if (found.items.length === 1) { location.href = `/tasks/${found.items[0].id}`; return; }
        if (!found.items.length) { said.textContent = `no task renders frame ${frame}`; return; }
        said.append(`frame ${frame} is in ${found.total} tasks: `);
        found.items.forEach((task, i) => {
          const link = document.createElement("a");
          link.href = `/tasks/${task.id}`;
          link.textContent = `${task.layer} · ${task.frames}` + (task.part ? ` · ${partLabel(task.part)}` : "");
          if (i) said.append(", ");
          said.append(link);
        });
      } catch (err) {
        said.textContent = err instanceof ApiError ? err.explain() : String(err);
      }
    });
  }

  // ------------------------------------------------------------------ job page: clone with changes
  // The job's spec as submitted (GET /jobs/{id}), its name, priority and each layer's frames and chunk
  // changed in a small form, submitted as a new job (POST /jobs); the server checks it as any submit.
  if (page === "job") setupClone($("#clone-form"));

  function setupClone(form) {
    if (!form) return;
    let spec = null;
    const jobId = form.dataset.jobId;
    const fill = async () => {
      if (spec) return;
      const job = await api("GET", `/api/v1/jobs/${jobId}`);
      spec = job.spec;
      $("#clone-name").value = `${spec.name} (clone)`.slice(0, 200);
      $("#clone-priority").value = spec.priority === undefined ? job.priority : spec.priority;
      const rows = $("#clone-layers");
      rows.replaceChildren();
      spec.layers.forEach((layer, i) => {
        const tr = document.createElement("tr");
        const name = document.createElement("td");
        name.textContent = layer.name;
        const cell = (field, value) => {
          const td = document.createElement("td");
          const input = document.createElement("input");
          input.dataset.layer = String(i); input.dataset.field = field;
          input.value = value === undefined || value === null ? "" : String(value);
          input.setAttribute("aria-label", `${layer.name} ${field}`);
          td.append(input);
          return td;
        };
        tr.append(name, cell("frames", layer.frames === undefined ? "1" : layer.frames), cell("chunk", layer.chunk === undefined ? 1 : layer.chunk));
        rows.append(tr);
      });
    };
    $("#clone").addEventListener("toggle", (event) => { if (event.target.open) fill().catch((err) => toast("Could not read the job", String(err), true)); });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!spec) await fill();
      const copy = JSON.parse(JSON.stringify(spec));
      copy.name = $("#clone-name").value.trim();
      const priority = parseInt($("#clone-priority").value, 10);
      if (!isNaN(priority)) copy.priority = priority;
      for (const input of $$("input[data-layer]", form)) {
        const layer = copy.layers[parseInt(input.dataset.layer, 10)], raw = input.value.trim();
        if (input.dataset.field === "chunk") layer.chunk = raw === "auto" ? "auto" : Number(raw);
        else layer.frames = raw;
      }
      const button = $("#clone-submit"), result = $("#clone-result");
      button.disabled = true;
      try {
        const job = await api("POST", "/api/v1/jobs", copy);
        const link = document.createElement("a");
        link.href = `/jobs/${job.id}`; link.id = "clone-link";
        link.textContent = `job #${job.id} ${job.name}`;
        result.replaceChildren(document.createTextNode("Submitted: "), link);
        // what a dry run of the spec would warn of, in its words (the answer's `warnings`)
        const warned = (job.warnings || []).map((w) => `warning: ${w}`);
        for (const line of warned) result.append(document.createElement("br"), document.createTextNode(line));
        toast(`Job ${job.id} submitted`, warned.join("\n"));
      } catch (err) {
        if (err instanceof ApiError) toast(`Refused (${err.status})`, err.explain(), true);
        else toast("Could not reach the server", String(err), true);
      } finally { button.disabled = false; }
    });
  }

  // ------------------------------------------------------------------ task page: attempt logs
  let logs = null;
  if (page === "task") logs = setupLogs();

  function setupLogs() {
    const pre = $("#log");
    const title = $("#log-title");
    const follow = $("#log-follow");
    const MAX_INITIAL = 256 * 1024;
    let attempt = null, offset = 0, chosen = false, busy = false, ended = false, again = false;
    let text = "", lead = "", current = -1;  // the log shown (after the note on what is not), the match in view
    const search = $("#log-search"), matchesBox = $("#log-matches"), timesBox = $("#log-times");
    // When lines arrived: [line of `text`, ISO time] from the pages' `times` (model/log_times.py), in order.
    let lineTimes = [], lineCount = 0;
    const showTimes = () => !!(timesBox && timesBox.checked);
    const pad = (n) => String(n).padStart(2, "0");
    const clock = (iso) => { const d = new Date(iso); return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`; };

    // Search within the log: every match marked, Enter / the arrows move between them. Painted from the
    // text held here, never from HTML: the log is only ever set as text.
    function paint() {
      const query = search ? search.value : "";
      const parts = [];
      if (lead) { const note = document.createElement("span"); note.className = "note"; note.textContent = lead; parts.push(note); }
      let found = 0;
      const marked = (chunk) => {  // `chunk` as text, every match of the query marked
        if (!query) { parts.push(document.createTextNode(chunk)); return; }
        const hay = chunk.toLowerCase(), needle = query.toLowerCase();
        let at = 0;
        for (let k = hay.indexOf(needle); k >= 0 && found < 5000; k = hay.indexOf(needle, k + needle.length)) {
          parts.push(document.createTextNode(chunk.slice(at, k)));
          const mark = document.createElement("mark");
          mark.textContent = chunk.slice(k, k + needle.length);
          parts.push(mark);
          at = k + needle.length; found++;
        }
        parts.push(document.createTextNode(chunk.slice(at)));
      };
      if (!showTimes()) marked(text);
      else {  // a time column: each line after the time its first byte arrived (blank when not known)
        const lines = text.split("\n");
        let next = 0, stamp = "";
        lines.forEach((line, i) => {
          if (i === lines.length - 1 && line === "") return;
          while (next < lineTimes.length && lineTimes[next][0] <= i) stamp = clock(lineTimes[next++][1]);
          const cell = document.createElement("span");
          cell.className = "log-time";
          cell.textContent = stamp || "--:--:--";
          parts.push(cell);
          marked(i < lines.length - 1 ? line + "\n" : line);
        });
      }
      pre.replaceChildren(...parts);
      if (matchesBox) matchesBox.textContent = query ? (found ? `${Math.min(current + 1, found) || 0} of ${found}${found >= 5000 ? "+" : ""}` : "no match") : "";
      return found;
    }
    function jump(step) {
      const marks = $$("mark", pre);
      if (!marks.length) { current = -1; paint(); return; }
      current = (current + step + marks.length) % marks.length;
      marks.forEach((m, i) => m.classList.toggle("current", i === current));
      marks[current].scrollIntoView({ block: "center" });
      if (matchesBox) matchesBox.textContent = `${current + 1} of ${marks.length}`;
    }
    if (search) {
      search.addEventListener("input", () => { current = -1; if (paint()) jump(1); });
      search.addEventListener("keydown", (event) => {
        if (event.key === "Enter") { event.preventDefault(); jump(event.shiftKey ? -1 : 1); }
      });
      $("#log-next").addEventListener("click", () => jump(1));
      $("#log-prev").addEventListener("click", () => jump(-1));
    }
    if (timesBox) timesBox.addEventListener("change", () => { current = -1; paint(); });
    const wrap = $("#log-wrap");
    if (wrap) {
      const apply = () => pre.classList.toggle("nowrap", !wrap.checked);
      wrap.addEventListener("change", apply);
      apply();
    }

    function rows() { return $$("tr[data-attempt]", live); }
    function liveAttempt() { const head = $("[data-live-attempt]", live); return head ? head.dataset.liveAttempt : ""; }

    function select(id, byUser) {
      const row = rows().find((r) => r.dataset.attempt === String(id));
      if (!row) return;
      chosen = chosen || !!byUser;
      attempt = String(id);
      const size = parseInt(row.dataset.logSize || "0", 10);
      offset = Math.max(0, size - MAX_INITIAL);
      pre.replaceChildren();
      if (offset > 0) {
        const note = document.createElement("span");
        note.className = "note";
        note.textContent = `… the first ${offset.toLocaleString()} bytes are not shown …\n`;
        pre.append(note);
      }
      title.textContent = `attempt ${row.children[0].textContent} on ${row.children[1].textContent}`;
      text = ""; lead = pre.firstChild ? pre.firstChild.textContent : "";
      lineTimes = []; lineCount = 0;
      const download = $("#log-download");
      if (download) { download.href = `/ui/attempts/${attempt}/log.txt`; download.hidden = false; }
      rows().forEach((r) => r.classList.toggle("selected-log", r === row));
      ended = false;
      pull();
    }

    async function pull() {
      if (!attempt || ended) return;  // a complete log is never read again
      if (busy) { again = true; return; }  // read again when the read in flight is done: it may predate the news
      busy = true;
      again = false;
      try {
        for (let round = 0; round < 50; round++) {
          const data = await api("GET", `/api/v1/attempts/${attempt}/log?offset=${offset}`);
          if (String(data.attempt_id) !== attempt) break;
          if (data.data) {
            const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
            for (const t of data.times || []) {  // line 0 may continue the last line shown: it keeps its time
              if (t.line === 0 && text && !text.endsWith("\n")) continue;
              lineTimes.push([lineCount + t.line, t.at]);
            }
            lineCount += data.data.split("\n").length - 1;
            text += data.data;
            if ((search && search.value) || showTimes()) { paint(); const marks = $$("mark", pre); if (marks[current]) marks[current].classList.add("current"); }
            else pre.append(document.createTextNode(data.data));
            if (atBottom) pre.scrollTop = pre.scrollHeight;
          }
          const grew = data.next_offset > offset;
          offset = data.next_offset;
          ended = data.complete;
          if (!grew) break;
        }
      } catch (err) { console.warn(err); }
      busy = false;
      label();
      if (!pre.textContent) pre.textContent = "";
      if (again) return pull();
    }

    // The server's word that the log is complete outranks a page that still shows the attempt running
    // (its refresh may come after the last read).
    function label() {
      const running = !ended && !!attempt && attempt === liveAttempt();
      follow.textContent = ended ? "complete" : (running ? "following live" : "");
      follow.classList.toggle("following", running);
    }

    live.addEventListener("click", (event) => {
      const button = event.target.closest("[data-show-log]");
      if (button) select(button.dataset.showLog, true);
    });
    hooks.push(() => {
      const current = liveAttempt();
      if (!chosen && current && current !== attempt) return select(current, false);
      if (!attempt) { const first = rows()[0]; if (first) return select(first.dataset.attempt, false); }
      rows().forEach((r) => r.classList.toggle("selected-log", r.dataset.attempt === attempt));
      if (!ended) pull();  // the attempt may have ended: fetch the rest of its log
      else label();
    });
    const start = liveAttempt() || (rows()[0] && rows()[0].dataset.attempt);
    if (start) select(start, false);
    else pre.textContent = "";
    return { attempt: () => attempt, pull: throttle(pull, 400), complete: () => ended };
  }

  // ------------------------------------------------------------------ thumbnails that are not there yet
  // A thumbnail that did not load: "no preview yet" when the file is not written yet, otherwise the
  // server's reason (say, "cannot preview EXR: ..."), asked for once.
  document.addEventListener("error", async (event) => {
    const img = event.target;
    if (!(img instanceof HTMLImageElement) || !img.closest(".thumb")) return;
    const note = document.createElement("div");
    note.className = "nopreview small";
    note.textContent = "no preview yet";
    const url = img.src;
    img.replaceWith(note);
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok || response.status === 404 || response.status === 401) return;
      const data = await response.json();
      if (data && data.detail) { note.textContent = data.detail; note.classList.add("bad"); note.title = data.detail; }
    } catch (_) { /* keep "no preview yet" */ }
  }, true);

  // ------------------------------------------------------------------ the event stream
  const dot = $("#live-dot");
  const jobIds = () => {
    const holder = $("[data-job-ids]", live || document);
    return new Set(holder && holder.dataset.jobIds ? holder.dataset.jobIds.split(",") : []);
  };
  const mine = (list, id) => id !== undefined && id !== "" && (list || []).some((x) => String(x) === String(id));
  let connectedOnce = false;

  function onEvent(event) {
    if (event.reload) return location.reload();
    if (event.hello) {
      if (connectedOnce) { requestRefresh(); if (grid) grid.refresh(); }  // catch up after a reconnect
      connectedOnce = true;
      return;
    }
    const jobId = body.dataset.jobId;
    const jobInfo = event.job_info || {};
    switch (page) {
      case "overview":
      case "nodes":
        if (event.summary !== undefined) requestRefresh();
        break;
      case "jobs": {
        // repaint progress in place; reload the list only when a job it shows (or might now show)
        // changed state or priority, or a new job came
        const filter = (new URLSearchParams(location.search).get("state") || "").split(",").filter(Boolean);
        // `paused` lists a job a person paused while its tasks run too (queries/views._state_condition)
        const listed = (info) => filter.includes(info.state) || (!!info.paused && filter.includes("paused")
          && !["succeeded", "failed", "killed"].includes(info.state));
        let soon = !!event.new_jobs, later = false;
        for (const id of event.jobs || []) {
          const row = $(`tr[data-job="${id}"]`, live);
          const info = jobInfo[id];
          if (!info) { if (row || filter.length) later = true; continue; }
          if (row) {
            if (row.dataset.state !== info.state || row.dataset.priority !== String(info.priority)
                || (filter.length && !listed(info))) soon = true;  // resumed: it leaves a paused list
            else {
              paintBar($(".progress-col", row), info.counts, info.total);
              if ($("tr.group-row", live)) later = true;  // its group's bar sums it: redrawn with the list
            }
          } else if (listed(info)) soon = true;
        }
        if (soon) requestRefresh(); else if (later) slowRefresh();
        break;
      }
      case "job": {
        const cells = (event.grid || {})[jobId];
        if (cells && grid) grid.apply(cells);
        const info = jobInfo[jobId];
        const head = $("[data-job-state]", live);
        if (info) {
          paintBar($(".job-progress", live), info.counts, info.total);
          if (!head || head.dataset.jobState !== info.state || head.dataset.jobPriority !== String(info.priority)) requestRefresh();
          else slowRefresh();  // layer states, times: they can wait
        } else if (mine(event.jobs, jobId)) slowRefresh();
        break;
      }
      case "task": {
        const info = (event.task_info || {})[body.dataset.taskId];
        const head = $("[data-task-state]", live);
        if (info && (!head || head.dataset.taskState !== info.state || head.dataset.taskTries !== String(info.tries) ||
                     head.dataset.taskAttempt !== String(info.attempt === null ? "" : info.attempt))) requestRefresh();
        if (logs && !logs.complete() && mine(event.logs, logs.attempt())) logs.pull();
        break;
      }
      case "node":
        if (mine(event.nodes, body.dataset.nodeId)) requestRefresh();
        break;
    }
  }

  if (page && page !== "missing" && window.EventSource) {
    // name the job or task this page shows: events then carry its changed cells or its new state
    // and whether it shows job progress (the server reads job counts only for tabs that do)
    const watch = page === "job" ? `?job=${body.dataset.jobId}` : page === "task" ? `?task=${body.dataset.taskId}&counts=0`
      : page === "jobs" ? "" : "?counts=0";
    const source = new EventSource("/events" + watch);
    source.onopen = () => { dot.textContent = "live"; dot.className = "live-dot on"; dot.title = "updates arrive as they happen"; };
    source.onerror = () => { dot.textContent = "reconnecting"; dot.className = "live-dot"; dot.title = "the event stream is reconnecting"; };
    source.onmessage = (message) => { try { onEvent(JSON.parse(message.data)); } catch (err) { console.warn(err); } };
    // A slow safety net for farms with several server processes (events are per process).
    setInterval(() => { if (document.visibilityState === "visible") { requestRefresh(); if (grid) grid.refresh(); } }, 30000);
  }

  afterSwap();
})();
