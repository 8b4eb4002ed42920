// Thresher dashboard: keyboard shortcuts (listed under `?`) and the light / dark theme toggle.
// Shortcuts only press the page's own buttons, so every action still asks where its button asks and
// goes through the same API call; nothing here talks to the server. Plain JavaScript, no build step.
"use strict";
(() => {
  const root = document.documentElement;
  const page = document.body.dataset.page || "";
  const $ = (sel, from = document) => from.querySelector(sel);
  const $$ = (sel, from = document) => Array.from(from.querySelectorAll(sel));

  // ------------------------------------------------------------------ theme: auto (the system's), light, dark
  const THEMES = ["auto", "light", "dark"];
  const KEY = "thresher-theme";
  const stored = () => { try { return localStorage.getItem(KEY) || "auto"; } catch (_) { return "auto"; } };
  function applyTheme(theme) {
    if (theme === "auto") delete root.dataset.theme; else root.dataset.theme = theme;
    const button = $("#theme");
    if (button) {
      button.textContent = theme === "auto" ? "Theme: auto" : theme === "light" ? "Theme: light" : "Theme: dark";
      button.title = "Switch the theme: auto (the system's), light, dark (key t)";
    }
    document.dispatchEvent(new CustomEvent("thresher:theme", { detail: theme }));  // the grid repaints
  }
  function nextTheme() {
    const theme = THEMES[(THEMES.indexOf(stored()) + 1) % THEMES.length];
    try { localStorage.setItem(KEY, theme); } catch (_) { /* private mode: this page only */ }
    applyTheme(theme);
  }
  applyTheme(stored());
  const themeButton = $("#theme");
  if (themeButton) themeButton.addEventListener("click", nextTheme);

  // ------------------------------------------------------------------ the shortcuts dialog
  const help = $("#keys");
  const showHelp = () => { if (help && !help.open) help.showModal(); };
  const helpButton = $("#keys-help");
  if (helpButton) helpButton.addEventListener("click", showHelp);

  // ------------------------------------------------------------------ the jobs list: a current row
  const live = $("#live");
  let current = null;  // the job id of the current row (kept across the live part's refreshes)
  const rows = () => (live ? $$("tr[data-job]", live) : []);
  function mark() {
    rows().forEach((tr) => tr.classList.toggle("current", tr.dataset.job === current));
  }
  function move(step) {
    const all = rows();
    if (!all.length) return;
    let k = all.findIndex((tr) => tr.dataset.job === current);
    k = k < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, k + step));
    current = all[k].dataset.job;
    mark();
    all[k].scrollIntoView({ block: "nearest" });
  }
  const currentRow = () => rows().find((tr) => tr.dataset.job === current) || null;
  function toggleCurrent() {
    const box = currentRow() && $("input.pick", currentRow());
    if (!box) return;
    box.checked = !box.checked;
    box.dispatchEvent(new Event("change", { bubbles: true }));  // the bulk bar follows
  }
  function bulk(verb) {  // the selected jobs, or the current one when none is selected
    if (!$$("input.pick:checked", live).length) toggleCurrent();
    const button = $(`#bulk [data-bulk="${verb}"]`);
    if (button && $$("input.pick:checked", live).length) button.click();
  }
  if (page === "jobs" && live) new MutationObserver(mark).observe(live, { childList: true });

  // ------------------------------------------------------------------ the keys
  const press = (sel) => { const el = $(sel); if (el && !el.disabled) el.click(); };
  const GO = { o: "/", j: "/jobs", n: "/nodes", p: "/projects" };
  let goPressed = 0;

  const JOBS_KEYS = {
    j: () => move(1), ArrowDown: () => move(1), k: () => move(-1), ArrowUp: () => move(-1),
    x: toggleCurrent, o: () => { const r = currentRow(); if (r) location.href = $("td.name a", r).href; },
    Enter: () => { const r = currentRow(); if (r) location.href = $("td.name a", r).href; },
    "/": () => { const box = $('.filters input[name="name"]'); if (box) box.focus(); },
    p: () => bulk("pause"), r: () => bulk("resume"), K: () => bulk("kill"),
  };
  const JOB_KEYS = {
    p: () => press($("#pause-job") ? "#pause-job" : "#resume-job"), r: () => press("#retry-job"),
    K: () => press("#kill-job"), u: () => { location.href = "/jobs"; },
  };

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    const target = event.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable]")) {
      if (event.key === "Escape" && target.blur) target.blur();
      return;
    }
    if ($$("dialog").some((d) => d.open)) return;  // a question is open: its own keys answer it
    const key = event.key;
    if (goPressed && Date.now() - goPressed < 1500 && GO[key]) {
      goPressed = 0;
      event.preventDefault();
      location.href = GO[key];
      return;
    }
    goPressed = 0;
    let act = null;
    if (key === "?") act = showHelp;
    else if (key === "t") act = nextTheme;
    else if (key === "g") act = () => { goPressed = Date.now(); };
    else if (page === "jobs") act = JOBS_KEYS[key];
    else if (page === "job") act = JOB_KEYS[key];
    if (!act) return;
    event.preventDefault();
    act();
  });
})();
