// The PM Agent dashboard: plain JS, no library, no build step, nothing fetched from elsewhere.
//
// The stub pushes the whole board (a BoardSnapshot, see dashboard/snapshot.py) as a server-sent
// `board` event after every change; this script draws it. Everything the board holds
// (names, roles, messages, ids) was written by workers or project files, so it is only ever
// inserted as text (textContent / text nodes / dataset), never as HTML, and never as a link.
// Lists are reconciled by key: an unchanged card is left alone, so a half-typed resolution,
// an open <details> and keyboard focus survive updates.
"use strict";

(() => {
  const COLUMNS = ["in_progress", "blocked", "todo", "done"];
  const STATUS_TEXT = { in_progress: "in progress", blocked: "blocked", todo: "to do", done: "done" };
  const SEVERITY_RANK = { low: 0, medium: 1, high: 2, critical: 3 };
  let serverOffsetMs = 0; // server clock - this browser's clock, from each snapshot's `now`
  let snapshots = 0;
  const openDetails = new Set(); // keys of <details> the operator opened

  // ------------------------------------------------------------------ DOM helpers

  /** h("div", {class: "x", data: {id: v}, title: t}, child...): children are nodes or text. */
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") el.className = value;
      else if (name === "data") for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
      else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else el.setAttribute(name, String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  /** Make `container`'s children match `items` (by key), rebuilding only the items that changed. */
  function reconcile(container, items, keyOf, build) {
    const existing = new Map();
    for (const el of container.children) existing.set(el.dataset.key, el);
    const wanted = new Set();
    items.forEach((item, i) => {
      const key = String(keyOf(item));
      wanted.add(key);
      const sig = JSON.stringify(item);
      let el = existing.get(key);
      if (!el || el._sig !== sig) {
        const fresh = build(item);
        fresh.dataset.key = key;
        fresh._sig = sig;
        if (el) {
          if (el._keep) el._keep(fresh);
          el.replaceWith(fresh);
        }
        el = fresh;
      }
      if (container.children[i] !== el) container.insertBefore(el, container.children[i] || null);
    });
    for (const [key, el] of existing) if (!wanted.has(key)) el.remove();
  }

  function details(key, summary, ...content) {
    const el = h("details", { open: openDetails.has(key) ? "" : null }, h("summary", {}, summary), ...content);
    el.addEventListener("toggle", () => (el.open ? openDetails.add(key) : openDetails.delete(key)));
    return el;
  }

  // ------------------------------------------------------------------ time

  const serverNow = () => Date.now() + serverOffsetMs;

  function ago(iso) {
    const s = Math.max(0, Math.round((serverNow() - Date.parse(iso)) / 1000));
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  }

  function leaseLeft(iso) {
    const s = Math.round((Date.parse(iso) - serverNow()) / 1000);
    return s >= 0 ? `lease ${s} s left` : `lease overdue by ${-s} s`;
  }

  const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour12: false });

  /** Text that counts down or up by itself: refreshed every second by tick(). */
  const live = (kind, iso) => h("span", { class: `live-${kind}`, data: { [kind]: iso } }, kind === "expires" ? leaseLeft(iso) : ago(iso));

  function tick() {
    for (const el of document.querySelectorAll("[data-expires]")) {
      el.textContent = leaseLeft(el.dataset.expires);
      el.classList.toggle("overdue", Date.parse(el.dataset.expires) < serverNow());
    }
    for (const el of document.querySelectorAll("[data-since]")) el.textContent = ago(el.dataset.since);
  }

  // ------------------------------------------------------------------ pieces

  const chip = (text, cls) => h("span", { class: `chip ${cls || ""}` }, text);

  function progressBar(pct, status) {
    return h("div", { class: `progress ${status}`, role: "progressbar", "aria-valuenow": pct, "aria-valuemin": 0, "aria-valuemax": 100 },
      h("div", { class: "fill", data: { pct } }), h("span", { class: "pct" }, `${pct}%`));
  }

  function setWidths(root) {
    // Widths from data-pct (CSP forbids inline style attributes, not CSSOM writes).
    for (const el of root.querySelectorAll("[data-pct]")) el.style.width = `${Math.max(0, Math.min(100, Number(el.dataset.pct)))}%`;
  }

  function artifactList(task) {
    if (!task.artifact_count) return null;
    const more = task.artifact_count - task.artifacts.length;
    return details(`art:${task.task_id}`, `${task.artifact_count} artifact${task.artifact_count === 1 ? "" : "s"}`,
      h("ul", { class: "artifacts" }, task.artifacts.map((a) =>
        h("li", {}, h("span", { class: "atype" }, a.artifact_type), " ", a.description,
          a.location ? h("div", { class: "loc" }, a.location) : null))),
      more > 0 ? h("p", { class: "muted small" }, `${more} older not shown (get_task_context lists them all)`) : null);
  }

  // A todo task that waits on nothing, but no worker online has its skills: not "ready".
  function nobodyText(t) {
    return "no worker online can take it" + (t.required_skills.length ? ` (needs ${t.required_skills.join(", ")})` : "");
  }

  function taskCard(t) {
    const meta = [];
    if (t.status === "in_progress") {
      meta.push(h("div", { class: "who" }, "held by ", h("b", { class: "id" }, t.holder || "?"), ` · attempt ${t.attempt}`));
      if (t.lease_expires_at) meta.push(h("div", { class: "lease" }, live("expires", t.lease_expires_at)));
    } else if (t.status === "todo") {
      if (t.waiting_on.length) meta.push(h("div", { class: "waiting" }, "waiting on ", t.waiting_on.map((d, i) => [i ? ", " : "", h("span", { class: "id" }, d)])));
      else if (t.pending_dependencies) meta.push(h("div", { class: "waiting" }, `waiting on ${t.pending_dependencies} dependencies`));
      else if (t.no_worker_can_take) meta.push(h("div", { class: "waiting nobody" }, nobodyText(t)));
      else meta.push(h("div", { class: "ready" }, "ready", t.attempt ? ` · ${t.attempt} earlier attempt${t.attempt === 1 ? "" : "s"}` : ""));
    } else if (t.status === "blocked") {
      meta.push(h("div", { class: "who" }, `blocked after attempt ${t.attempt} · see Blockers`));
    } else if (t.status === "done") {
      meta.push(h("div", { class: "who" }, "done by ", h("b", { class: "id" }, t.completed_by || "?"),
        t.completed_at ? [" · ", live("since", t.completed_at)] : null));
    }
    const card = h("article", { class: `card ${t.status}`, data: { taskId: t.task_id, status: t.status } },
      h("div", { class: "card-top" }, h("span", { class: "id task-id" }, t.task_id), chip(t.priority, `prio-${t.priority}`)),
      h("div", { class: "name" }, t.task_name),
      t.status === "in_progress" ? progressBar(t.progress, t.status) : null,
      meta,
      t.required_skills.length ? h("div", { class: "skills" }, t.required_skills.map((s) => chip(s, "skill"))) : null,
      artifactList(t));
    setWidths(card);
    return card;
  }

  /** The snapshot's blockers (a few per task, worst first) as one group per task. */
  function blockedTasks(blockers) {
    const groups = new Map();
    for (const b of blockers) {
      if (!groups.has(b.task_id)) groups.set(b.task_id, { task_id: b.task_id, task_name: b.task_name, open: b.task_open_blockers, blockers: [] });
      groups.get(b.task_id).blockers.push(b);
    }
    return [...groups.values()];
  }

  function blockerEntry(b) {
    const cut = b.description_length - b.description.length;
    return h("div", { class: `entry sev-${b.severity}`, data: { blockerId: b.blocker_id } },
      h("div", { class: "muted small" }, chip(b.severity, `sev sev-${b.severity}`), ` blocker ${b.blocker_id} · `,
        b.agent_id ? ["by ", h("span", { class: "id" }, b.agent_id), " · "] : "", live("since", b.created_at)),
      h("pre", { class: "desc" }, b.description, cut > 0 ? `\n… ${cut} more characters (get_task_context has them all)` : ""),
      h("div", { class: "suggestion" }, h("span", { class: "label" }, "Suggestion"), h("span", { class: "text" }, b.resolution_suggestion)));
  }

  // One card per blocked task: its worst (then newest) open blockers, how many more it has, and one resolve
  // form (resolve_blocker closes every open blocker of the task).
  function blockerCard(g) {
    const worst = g.blockers.reduce((w, b) => (SEVERITY_RANK[b.severity] > SEVERITY_RANK[w] ? b.severity : w), "low");
    const unseen = g.open - g.blockers.length;
    const message = h("p", { class: "result", role: "status" });
    const text = h("textarea", { name: "resolution", rows: 2, required: "", maxlength: 10000, placeholder: "What was done about it (kept with the blocker)" });
    const button = h("button", { type: "submit" }, g.open > 1 ? `Resolve all ${g.open} and requeue` : "Resolve and requeue");
    const form = h("form", { class: "resolve" }, text, button, message);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      button.disabled = true;
      message.textContent = "resolving…";
      try {
        const res = await fetch("/dashboard/api/resolve", {
          method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ task_id: g.task_id, resolution: text.value }),
        });
        const answer = await res.json().catch(() => ({ message: `HTTP ${res.status}` }));
        message.textContent = answer.message || `HTTP ${res.status}`;
        message.className = `result ${res.ok ? "ok" : "error"}`;
        if (res.status === 401) location.assign("/login");
      } catch (err) {
        message.textContent = `could not reach the stub: ${err}`;
        message.className = "result error";
      } finally {
        button.disabled = false;
      }
    });
    const card = h("article", { class: `blocker sev-${worst}`, data: { taskId: g.task_id, open: g.open } },
      h("div", { class: "card-top" }, h("span", { class: "id task-id" }, g.task_id),
        h("span", { class: "muted small open-count" }, g.open === 1 ? "1 open blocker" : `${g.open} open blockers`)),
      h("div", { class: "name" }, g.task_name),
      g.blockers.map(blockerEntry),
      unseen > 0 ? h("p", { class: "muted small more-blockers" }, `+ ${unseen} more open blocker${unseen === 1 ? "" : "s"} not shown (python -m pm_agent_stub show ${g.task_id} lists them)`) : null,
      form);
    // Carried into a rebuilt card: what the operator was typing, and the focus.
    card._keep = (fresh) => {
      const next = fresh.querySelector("textarea");
      next.value = text.value;
      if (document.activeElement === text) setTimeout(() => next.focus(), 0);
    };
    return card;
  }

  function workerRow(a) {
    return h("tr", { data: { agentId: a.agent_id, status: a.status } },
      h("td", {}, h("div", { class: "id" }, a.agent_id), a.name !== a.agent_id ? h("div", { class: "muted small" }, a.name) : null),
      h("td", {}, a.role),
      h("td", {}, a.skills.map((s) => chip(s, "skill"))),
      h("td", {}, h("span", { class: `dot ${a.status}` }), a.status),
      h("td", {}, a.current_task ? h("span", { class: "id" }, a.current_task) : h("span", { class: "muted" }, "–")),
      h("td", {}, live("since", a.last_seen)),
      h("td", { class: "num" }, String(a.tasks_completed)));
  }

  function feedItem(e) {
    return h("li", { data: { kind: e.kind } },
      h("time", { datetime: e.at }, clock(e.at)),
      chip(e.kind, `kind kind-${e.kind}`),
      e.task_id ? h("span", { class: "id" }, e.task_id) : null,
      e.agent_id ? h("span", { class: "agent" }, "by ", h("span", { class: "id" }, e.agent_id)) : null,
      h("span", { class: "text" }, e.text));
  }

  // ------------------------------------------------------------------ the whole board

  function render(s) {
    serverOffsetMs = Date.parse(s.now) - Date.now();
    const p = s.project_status;
    const bar = document.getElementById("bar");
    const segments = ["done", "in_progress", "blocked", "todo"].filter((c) => p[c] > 0);
    reconcile(bar, segments.map((c) => ({ c, n: p[c], total: p.total_tasks })), (x) => x.c, (x) => {
      const seg = h("div", { class: `seg ${x.c}`, title: `${STATUS_TEXT[x.c]}: ${x.n}` });
      seg.style.width = `${(100 * x.n) / x.total}%`;
      return seg;
    });
    const w = s.workers;
    reconcile(document.getElementById("summary"), [
      { k: "tasks", text: `${p.total_tasks} tasks · ${p.completion_percentage}% done` },
      ...COLUMNS.map((c) => ({ k: c, text: `${p[c]} ${STATUS_TEXT[c]}`, cls: c })),
      { k: "workers", text: `${w.total} workers: ${w.working} working, ${w.idle} idle, ${w.offline} offline`, cls: "workers" },
    ], (x) => x.k, (x) => chip(x.text, `stat ${x.cls || ""}`));

    for (const col of s.columns) {
      const root = document.querySelector(`[data-column="${col.status}"]`);
      root.querySelector(".count").textContent = String(col.total);
      reconcile(root.querySelector(".cards"), col.tasks, (t) => t.task_id, taskCard);
      const hidden = col.total - col.tasks.length;
      root.querySelector(".more").textContent = hidden > 0 ? `+ ${hidden} more not shown (status --json --all lists every task)` : "";
    }
    const blocked = blockedTasks(s.blockers);
    reconcile(document.getElementById("blockers"), blocked, (g) => g.task_id, blockerCard);
    document.getElementById("blocker-count").textContent = String(blocked.reduce((n, g) => n + g.open, 0));
    document.getElementById("no-blockers").hidden = blocked.length > 0;
    const hiddenTasks = p.blocked - blocked.length;
    document.getElementById("more-blockers").textContent = hiddenTasks > 0 ? `+ ${hiddenTasks} more blocked tasks not shown (status --json --all lists every task)` : "";
    reconcile(document.getElementById("workers"), s.agents, (a) => a.agent_id, workerRow);
    document.getElementById("worker-count").textContent = String(s.workers.total);
    document.getElementById("no-workers").hidden = s.agents.length > 0;
    const unseen = s.workers.total - s.agents.length;
    document.getElementById("more-workers").textContent = unseen > 0 ? `+ ${unseen} more not shown (status --json --all lists every agent)` : "";
    reconcile(document.getElementById("feed"), s.events, (e) => e.id, feedItem);
    snapshots += 1;
    document.body.dataset.snapshots = String(snapshots);
    tick();
  }

  function setConnection(state, text) {
    document.getElementById("conn").dataset.state = state;
    document.getElementById("conn-text").textContent = text;
  }

  // The board's event stream, read with fetch rather than EventSource: EventSource gives up
  // on a refusal (503 when the stub already serves its most pages, 401 after a logout)
  // without saying why, and the page should show the stub's reason.
  let retryMs = 1000;

  function dispatch(lines) {
    let event = "";
    const data = [];
    for (const line of lines) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      else if (line.startsWith("retry:")) retryMs = Number(line.slice(6)) || retryMs;
    }
    if (event === "board" && data.length) {
      setConnection("live", "live");
      render(JSON.parse(data.join("\n")));
    }
  }

  async function connect() {
    let res;
    try {
      res = await fetch("/dashboard/api/stream", {
        credentials: "same-origin",
        cache: "no-store",
        headers: { accept: "text/event-stream" },
      });
    } catch (e) {
      setConnection("down", "reconnecting…");
      setTimeout(connect, 2000);
      return;
    }
    if (res.status === 401) {
      location.assign("/login");
      return;
    }
    if (!res.ok || !res.body) {
      let why = `the stub answered ${res.status}.`;
      try {
        const body = await res.json();
        if (body && body.message) why = body.message;
      } catch (e) {
        /* not JSON: the status says enough */
      }
      const wait = Math.max(2, Number(res.headers.get("retry-after")) || 10);
      // Meanwhile the board as it is now (the stub's shared snapshot: no build of its own).
      const now = await fetch("/dashboard/api/board", { credentials: "same-origin" }).catch(() => null);
      if (now && now.ok) render(await now.json());
      setConnection("down", `no live updates: ${why} Retrying in ${wait} s.`);
      setTimeout(connect, wait * 1000);
      return;
    }
    setConnection("live", "live");
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let lines = [];
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const from = buffer.length;
        buffer += decoder.decode(value, { stream: true });
        let start = 0;
        let nl = buffer.indexOf("\n", from);
        while (nl >= 0) {
          const line = buffer.slice(start, nl).replace(/\r$/, "");
          if (line === "") {
            dispatch(lines);
            lines = [];
          } else if (!line.startsWith(":")) {
            lines.push(line);
          }
          start = nl + 1;
          nl = buffer.indexOf("\n", start);
        }
        buffer = buffer.slice(start);
      }
    } catch (e) {
      /* the connection dropped: reconnect below */
    }
    // The stub ends a stream after a while (PM_DASHBOARD_STREAM_MAX_SECONDS) or when the
    // session logs out: reconnecting checks the credentials again.
    setConnection("down", "reconnecting…");
    setTimeout(connect, retryMs);
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (document.body.dataset.auth !== "on") document.querySelector("form.logout").hidden = true;
    connect();
    setInterval(tick, 1000);
  });
})();
