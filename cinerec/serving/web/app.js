// The cinerec demo page: asks the public /v1 API for recommendations, sends feedback and
// shows "more like this" and the user's history. All DOM built from API data goes through
// createElement/textContent, never innerHTML.
"use strict";

(() => {
  const form = document.getElementById("query");
  const message = document.getElementById("message");
  const meta = document.getElementById("meta");
  const empty = document.getElementById("empty");
  const cards = document.getElementById("cards");
  const similarPanel = document.getElementById("similar-panel");
  const similarTitle = document.getElementById("similar-title");
  const similarList = document.getElementById("similar");
  const historyUser = document.getElementById("history-user");
  const historyEmpty = document.getElementById("history-empty");
  const historyList = document.getElementById("history");

  const FEEDBACK = [
    { label: "Like", action: "like", testid: "like" },
    { label: "Skip", action: "skip", testid: "skip" },
    { label: "Watched", action: "watch", testid: "watched" },
  ];

  // The query of the list on screen: feedback re-asks exactly it.
  let shown = null;
  // Only the newest request of each kind may draw (an older answer arriving late is dropped).
  const latest = { recs: 0, history: 0, similar: 0 };
  let pending = 0;

  /** An answer of the API that is not 2xx: its status and its `detail` as text. */
  class ApiError extends Error {
    constructor(status, detail) {
      super(status ? `${status}: ${detail}` : detail);
      this.status = status;
    }
  }

  /** `detail` as one line: a string as is, FastAPI's validation list as "where: what; …". */
  function describe(detail) {
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail
        .map((e) => (e && e.msg ? `${(e.loc || []).join(".")}: ${e.msg}` : JSON.stringify(e)))
        .join("; ");
    }
    return JSON.stringify(detail);
  }

  /** fetch a JSON answer; throws ApiError for a non-2xx answer or a network failure. */
  async function api(path, options = {}) {
    pending += 1;
    document.body.dataset.busy = "true";
    try {
      let response;
      try {
        response = await fetch(path, {
          ...options,
          headers: { accept: "application/json", ...(options.headers || {}) },
        });
      } catch (err) {
        throw new ApiError(0, `the service did not answer (${err.message})`);
      }
      const text = await response.text();
      let body = null;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        body = null;
      }
      if (!response.ok) {
        const detail = body && body.detail !== undefined ? describe(body.detail) : text;
        throw new ApiError(response.status, detail || response.statusText);
      }
      return body;
    } finally {
      pending -= 1;
      if (pending === 0) delete document.body.dataset.busy;
    }
  }

  function showError(err) {
    message.textContent = err instanceof ApiError ? err.message : `Unexpected error: ${err}`;
    message.hidden = false;
  }

  function clearError() {
    message.textContent = "";
    message.hidden = true;
  }

  /** A new element: `props` sets className, text, testid and other attributes. */
  function el(tag, props = {}, children = []) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null) continue;
      if (key === "className") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key === "testid") node.dataset.testid = value;
      else node.setAttribute(key, String(value));
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  /** The form as the query of GET /v1/recommendations (empty fields left out). */
  function readForm() {
    const data = new FormData(form);
    const field = (name) => String(data.get(name) || "").trim();
    const params = new URLSearchParams();
    const userId = field("user_id");
    if (userId) params.set("user_id", userId);
    if (field("k")) params.set("k", field("k"));
    if (field("max_age_rating")) params.set("max_age_rating", field("max_age_rating"));
    if (field("type")) params.set("types", field("type"));
    if (field("country")) params.set("country", field("country"));
    return { userId, params };
  }

  // ----- recommendations ------------------------------------------------------------------

  async function loadRecommendations(query) {
    const mine = ++latest.recs;
    let body;
    try {
      body = await api(`/v1/recommendations?${query.params}`);
    } catch (err) {
      if (mine !== latest.recs) return; // a newer query is on its way
      throw err;
    }
    if (mine !== latest.recs) return;
    shown = query;
    renderRecommendations(body);
  }

  function renderRecommendations(body) {
    const parts = [
      `model ${body.model_version}`,
      `config ${body.config_hash}`,
      body.cached ? `cached (${body.source})` : `fresh (${body.source})`,
    ];
    if (body.cold_start) parts.push("new-visitor path");
    meta.textContent = parts.join(" · ");
    meta.dataset.cached = String(Boolean(body.cached));
    meta.hidden = false;
    empty.hidden = body.items.length > 0;
    cards.replaceChildren(...body.items.map(card));
  }

  function card(item) {
    const title = item.title || item.item_id;
    const facts = [item.type, item.year].filter((v) => v !== undefined && v !== null && v !== "");
    const genres = Array.isArray(item.genres) ? item.genres.join(", ") : item.genres;
    const sources = el(
      "ul",
      { className: "sources", testid: "card-sources", "aria-label": "recall sources" },
      item.sources.map((s) => el("li", { text: s })),
    );
    const actions = el("div", { className: "actions" }, [
      ...FEEDBACK.map(({ label, action, testid }) =>
        button(label, testid, () => sendFeedback(item, action)),
      ),
      button("More like this", "more-like-this", () => loadSimilar(item), "secondary"),
    ]);
    const node = el("li", { className: "card", testid: "card" }, [
      el("div", { className: "card-head" }, [
        el("span", { className: "rank", testid: "card-rank", text: `#${item.rank}` }),
        el("h3", { className: "title", testid: "card-title", text: title }),
      ]),
      facts.length
        ? el("p", { className: "facts", testid: "card-facts", text: facts.join(" · ") })
        : null,
      genres ? el("p", { className: "genres", testid: "card-genres", text: genres }) : null,
      el("p", { className: "reason", testid: "card-reason", text: item.reason.text }),
      el("p", { className: "score", testid: "card-score", text: `score ${item.score.toFixed(4)}` }),
      sources,
      actions,
    ]);
    node.dataset.itemId = item.item_id;
    return node;
  }

  function button(label, testid, onClick, className) {
    const node = el("button", { type: "button", testid, className, text: label });
    node.addEventListener("click", onClick);
    return node;
  }

  // ----- feedback, similar, history -------------------------------------------------------

  async function sendFeedback(item, action) {
    if (!shown) return;
    const query = shown;
    setActionsDisabled(true);
    try {
      await api("/v1/feedback", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ user_id: query.userId, item_id: item.item_id, action }),
      });
      clearError();
      // The API is read-after-write: the next answer already reflects this event.
      await Promise.all([loadRecommendations(query), loadHistory(query.userId)]);
    } catch (err) {
      showError(err);
    } finally {
      setActionsDisabled(false);
    }
  }

  function setActionsDisabled(disabled) {
    for (const node of cards.querySelectorAll("button")) node.disabled = disabled;
  }

  async function loadSimilar(item) {
    const mine = ++latest.similar;
    try {
      const items = await api(`/v1/items/${encodeURIComponent(item.item_id)}/similar?k=5`);
      if (mine !== latest.similar) return;
      clearError();
      similarTitle.textContent = `More like “${item.title || item.item_id}”`;
      similarList.replaceChildren(
        ...items.map((s) => {
          const facts = [s.type, `score ${s.score.toFixed(3)}`].filter(Boolean).join(" · ");
          const node = el("li", { testid: "similar-entry" }, [
            el("span", { className: "entry-title", text: s.title || s.item_id }),
            el("span", { className: "muted", text: facts }),
          ]);
          node.dataset.itemId = s.item_id;
          return node;
        }),
      );
      similarPanel.hidden = false;
      similarPanel.scrollIntoView({ block: "nearest", behavior: "smooth" });
    } catch (err) {
      showError(err);
    }
  }

  async function loadHistory(userId) {
    const mine = ++latest.history;
    historyUser.textContent = userId ? `of ${userId}` : "";
    if (!userId) {
      historyList.replaceChildren();
      historyEmpty.hidden = false;
      return;
    }
    let events;
    try {
      events = await api(`/v1/users/${encodeURIComponent(userId)}/history?limit=20`);
    } catch (err) {
      if (mine !== latest.history) return;
      historyList.replaceChildren();
      if (err instanceof ApiError && err.status === 404) historyEmpty.hidden = false;
      else showError(err);
      return;
    }
    if (mine !== latest.history) return;
    historyEmpty.hidden = events.length > 0;
    historyList.replaceChildren(...events.slice().reverse().map(historyEntry));
  }

  function historyEntry(event) {
    const when = new Date(event.timestamp).toLocaleString();
    const node = el("li", { testid: "history-entry" }, [
      el("span", { className: `badge ${event.source}`, text: event.action }),
      el("span", { className: "entry-title", text: event.title || event.item_id }),
      el("span", { className: "muted", text: `${when} · ${event.source}` }),
    ]);
    node.dataset.itemId = event.item_id;
    node.dataset.action = event.action;
    return node;
  }

  // ----- wiring ---------------------------------------------------------------------------

  async function submit() {
    const query = readForm();
    clearError();
    try {
      await Promise.all([loadRecommendations(query), loadHistory(query.userId)]);
    } catch (err) {
      shown = null;
      cards.replaceChildren();
      meta.hidden = true;
      empty.hidden = true;
      showError(err);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  submit();
})();
