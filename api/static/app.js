// The search page: reads ?q= (and filters), asks /ask (falls back to /search before /ask exists), renders safely.
"use strict";

(function () {
  const K = 5;
  const $ = (id) => document.getElementById(id);
  const form = $("search-form"), input = $("q"), statusLine = $("status"), results = $("results");
  const answerBox = $("answer"), answerRoles = $("answer-roles"), answerText = $("answer-text");
  const answerSources = $("answer-sources"), facetsBox = $("facets"), facetsToggle = $("facets-toggle");
  const answerFeedback = $("answer-feedback"), commentForm = $("feedback-comment"), commentText = $("comment-text");
  const commentLabel = $("comment-label"), feedbackStatus = $("feedback-status");
  // The id of the search shown (null when the server keeps no analytics): clicks and judgements refer to it.
  let searchId = null;
  let pending = null; // the judgement a comment would go with: {rank, judgement}
  // Filters chosen on the page, kept in the URL (?tag=a&tag=b) so a filtered search can be linked.
  const FACETS = [["article", "Article"], ["tag", "Tag"], ["source", "Source"]];
  const chosen = {};
  function readFilters() {
    const params = new URLSearchParams(location.search);
    for (const [name] of FACETS) chosen[name] = new Set(params.getAll(name));
  }
  function filterParams(params) {
    for (const [name] of FACETS) for (const v of chosen[name]) params.append(name, v);
    return params;
  }
  let askAvailable = true; // becomes false after /ask answers 404 (an older server)
  let latest = 0; // only the newest search may render

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) node.setAttribute(k, v);
    }
    for (const c of children) node.append(c); // strings become text nodes: never parsed as HTML
    return node;
  }

  function errorMessage(body, status) {
    const d = body && body.detail;
    if (Array.isArray(d)) return d.map((e) => e.msg || String(e)).join("; ");
    if (typeof d === "string") return d;
    return "request failed (HTTP " + status + ")";
  }

  async function getJSON(path, params) {
    const r = await fetch(path + "?" + params, { headers: { Accept: "application/json" } });
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    return { status: r.status, ok: r.ok, body };
  }

  // The best sentence of a passage: hit.highlight {text, start, end} (offsets in the passage), else none.
  function highlightRange(hit) {
    let h = hit.highlight;
    if (Array.isArray(h)) h = h[0];
    if (!h) return null;
    if (typeof h === "string") h = { text: h };
    const text = hit.text;
    if (Number.isInteger(h.start) && Number.isInteger(h.end) && h.start >= 0 && h.end <= text.length && h.start < h.end) {
      return [h.start, h.end];
    }
    if (h.text) {
      const at = text.indexOf(h.text);
      if (at >= 0) return [at, at + h.text.length];
    }
    return null;
  }

  function snippet(hit) {
    const p = el("p", { class: "snippet" });
    const range = highlightRange(hit);
    if (!range) {
      p.append(hit.text);
      return p;
    }
    p.append(hit.text.slice(0, range[0]), el("mark", {}, hit.text.slice(range[0], range[1])), hit.text.slice(range[1]));
    return p;
  }

  function thumbs(rank, what) {
    const group = el("div", { class: "feedback hit-feedback", role: "group", "aria-label": "Was " + what + " helpful?" },
      el("button", { type: "button", class: "thumb", "data-rank": String(rank), "data-judgement": "up",
        "aria-pressed": "false", "aria-label": what + " is helpful" }, "Helpful"),
      el("button", { type: "button", class: "thumb", "data-rank": String(rank), "data-judgement": "down",
        "aria-pressed": "false", "aria-label": what + " is not helpful" }, "Not helpful"));
    return group;
  }

  function renderHits(hits) {
    results.replaceChildren(...hits.map((hit) => {
      const path = hit.section_path && hit.section_path.length ? hit.section_path.join(" › ") : "";
      return el("li", { class: "hit", id: "hit-" + hit.rank },
        el("a", { class: "hit-link", href: hit.url, "data-passage": hit.passage_id, "data-rank": String(hit.rank) }, hit.title),
        el("p", { class: "section" }, path || "(top of the article)"),
        snippet(hit),
        ...(searchId ? [thumbs(hit.rank, "Result " + hit.rank)] : []));
    }));
  }

  // A click on a hit is reported with sendBeacon: it is queued by the browser, so opening the link never waits.
  function reportClick(rank) {
    if (!searchId || !navigator.sendBeacon) return;
    const body = new Blob([JSON.stringify({ search_id: searchId, rank })], { type: "application/json" });
    navigator.sendBeacon("/feedback/click", body);
  }
  function onLinkClick(ev) {
    const a = ev.target.closest("a.hit-link");
    if (a && (ev.type === "click" || ev.button === 1)) reportClick(Number(a.dataset.rank));
  }
  results.addEventListener("click", onLinkClick);
  results.addEventListener("auxclick", onLinkClick);

  async function sendFeedback(body) {
    try {
      const r = await fetch("/feedback", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ search_id: searchId, ...body }) });
      return r.ok;
    } catch (e) { return false; }
  }
  async function judge(button) {
    const rank = button.dataset.rank ? Number(button.dataset.rank) : null;
    const judgement = button.dataset.judgement;
    for (const b of button.parentElement.querySelectorAll("button.thumb")) b.setAttribute("aria-pressed", String(b === button));
    pending = { rank, judgement };
    const ok = await sendFeedback(rank === null ? { judgement } : { rank, judgement });
    feedbackStatus.textContent = ok ? "Thanks: your judgement was recorded." : "Your judgement could not be sent.";
    if (ok) {
      button.parentElement.after(commentForm); // the comment box right under the judgement it goes with
      commentLabel.textContent = "Anything to add about " + (rank === null ? "the answer" : "result " + rank) + "? (optional)";
      commentForm.hidden = false;
    }
  }
  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("button.thumb");
    if (b && searchId) judge(b);
  });
  commentForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const comment = commentText.value.trim();
    if (!comment || !pending) return;
    const body = pending.rank === null ? { judgement: pending.judgement, comment } : { ...pending, comment };
    const ok = await sendFeedback(body);
    feedbackStatus.textContent = ok ? "Thanks: your comment was recorded." : "Your comment could not be sent.";
    if (ok) { commentText.value = ""; commentForm.hidden = true; }
  });
  facetsToggle.addEventListener("click", () => {
    const open = facetsToggle.getAttribute("aria-expanded") !== "true";
    facetsToggle.setAttribute("aria-expanded", String(open));
    facetsBox.parentElement.classList.toggle("open", open);
  });

  function renderAnswer(answer, hits) {
    if (!answer) { answerBox.hidden = true; return; }
    const byId = new Map(hits.map((h) => [h.passage_id, h]));
    const roles = Array.isArray(answer.roles) ? answer.roles : [];
    answerBox.classList.toggle("unanswerable", !answer.answerable);
    answerRoles.replaceChildren(...roles.map((r) => {
      const pct = Math.round(Math.max(0, Math.min(1, Number(r.confidence) || 0)) * 100);
      return el("li", { class: "role" },
        el("strong", {}, r.role),
        el("span", { class: "confidence", title: "confidence" }, pct + "%"),
        el("meter", { min: "0", max: "100", value: String(pct), "aria-label": r.role + " confidence" }));
    }));
    answerText.textContent = answer.text || (answer.answerable ? "" : "The articles do not answer this question.");
    const ids = [...new Set(roles.flatMap((r) => r.evidence || []))];
    const links = ids.map((id) => {
      const h = byId.get(id);
      return el("li", {}, h ? el("a", { href: h.url }, h.title + (h.section ? " — " + h.section : "")) : id);
    });
    answerSources.replaceChildren(...(links.length ? [el("h3", {}, "Sources"), el("ul", {}, ...links)] : []));
    for (const b of answerFeedback.querySelectorAll("button.thumb")) b.setAttribute("aria-pressed", "false");
    answerFeedback.hidden = !searchId;
    answerBox.hidden = false;
  }

  // Facets: counts over the top hits the caller may see; a click adds or drops that filter and searches again.
  function renderFacets(facets) {
    const groups = [];
    for (const [name, title] of FACETS) {
      const values = (facets && facets[name]) || [];
      const shown = new Map(values.map((f) => [f.value, f]));
      for (const v of chosen[name]) if (!shown.has(v)) shown.set(v, { value: v, label: v, count: 0 });
      if (shown.size < 2 && !chosen[name].size) continue; // one value narrows nothing
      const buttons = [...shown.values()].map((f) => {
        const on = chosen[name].has(f.value);
        const b = el("button", { type: "button", class: "facet", "aria-pressed": on ? "true" : "false",
          "data-facet": name, "data-value": f.value }, f.label + " ", el("span", { class: "count" }, String(f.count)));
        b.addEventListener("click", () => {
          if (on) chosen[name].delete(f.value); else chosen[name].add(f.value);
          run(input.value, true);
        });
        return b;
      });
      groups.push(el("div", { class: "facet-group", role: "group", "aria-label": title }, el("h3", {}, title), ...buttons));
    }
    facetsBox.replaceChildren(...groups);
    facetsBox.hidden = groups.length === 0;
    facetsToggle.hidden = groups.length === 0;
  }

  async function run(q, push) {
    q = q.trim();
    const mine = ++latest;
    if (!q) { statusLine.textContent = ""; results.replaceChildren(); answerBox.hidden = true; facetsBox.hidden = true; facetsToggle.hidden = true; return; }
    if (push) history.pushState({ q }, "", "/?" + filterParams(new URLSearchParams({ q })).toString().replace(/\+/g, "%20"));
    document.title = q + " · rolesearch";
    statusLine.textContent = "Searching…";
    let res;
    try {
      if (askAvailable) {
        res = await getJSON("/ask", filterParams(new URLSearchParams({ q, facets: "true" })));
        if (res.status === 404 && res.body && res.body.detail === "Not Found") { askAvailable = false; }
      }
      if (!askAvailable) res = await getJSON("/search", filterParams(new URLSearchParams({ q, k: String(K), facets: "true" })));
    } catch (e) {
      if (mine === latest) statusLine.textContent = "The search service cannot be reached.";
      return;
    }
    if (mine !== latest) return;
    if (!res.ok) {
      statusLine.textContent = errorMessage(res.body, res.status);
      results.replaceChildren();
      answerBox.hidden = true;
      facetsBox.hidden = true;
      facetsToggle.hidden = true;
      searchId = null;
      return;
    }
    const hits = res.body.hits || [];
    searchId = res.body.search_id || null;
    pending = null;
    commentForm.hidden = true;
    feedbackStatus.textContent = "";
    renderFacets(res.body.facets);
    renderAnswer(res.body.answer, hits);
    renderHits(hits);
    const took = res.body.took_ms !== undefined ? " in " + Math.round(res.body.took_ms) + " ms" : "";
    statusLine.textContent = hits.length ? hits.length + " passages" + took : "No passages match.";
  }

  form.addEventListener("submit", (ev) => { ev.preventDefault(); run(input.value, true); });
  window.addEventListener("popstate", () => { readFilters(); const q = new URLSearchParams(location.search).get("q") || ""; input.value = q; run(q, false); });

  // Keyboard: "/" focuses the box; arrows move between the box and the result links.
  document.addEventListener("keydown", (ev) => {
    const links = [...document.querySelectorAll("#answer a, #results .hit-link")];
    if (ev.key === "/" && document.activeElement !== input) {
      ev.preventDefault(); input.focus(); input.select(); return;
    }
    if (ev.key !== "ArrowDown" && ev.key !== "ArrowUp") return;
    const at = links.indexOf(document.activeElement);
    if (document.activeElement !== input && at < 0) return;
    ev.preventDefault();
    const next = ev.key === "ArrowDown" ? at + 1 : at - 1;
    if (next < 0) input.focus();
    else if (next < links.length) links[next].focus();
  });

  readFilters();
  const initial = new URLSearchParams(location.search).get("q");
  if (initial) { input.value = initial; run(initial, false); }
})();
