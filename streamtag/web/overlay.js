/* The overlay: the top genre with its probability, and taste. See feed.js for the connection and states. */
(function () {
  "use strict";

  const st = window.streamtag;
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(window.location.search);
  const ALIGN = { left: "flex-start", center: "center", right: "flex-end" };
  let labelColors = {}; // hello.label_colors
  const STATE_TEXT = {
    connecting: "connecting", waiting: "waiting", live: "live", silent: "silent", disconnected: "offline",
    "source-down": "source down",
  };

  const scale = Number(params.get("scale"));
  if (Number.isFinite(scale) && scale >= 0.5 && scale <= 4) document.body.style.setProperty("--scale", String(scale));
  const align = ALIGN[params.get("align")];
  if (align) document.body.style.setProperty("--align", align);

  function colorOf(label) {
    return st.colorFor(label, labelColors);
  }

  function onHello(msg) {
    labelColors = msg.label_colors && typeof msg.label_colors === "object" ? msg.label_colors : {};
  }

  function onScores(msg) {
    const top = typeof msg.top === "string" && msg.top ? msg.top : null;
    const p = top && msg.genre && st.isNumber(msg.genre[top]) ? msg.genre[top] : null;
    const genreEl = $("top-genre");
    genreEl.dataset.label = top || "";
    genreEl.textContent = top ? st.displayName(top) : msg.silent ? "silence" : "–";
    $("top-prob").textContent = p !== null ? `${Math.round(100 * p)}%` : "";
    $("top-prob-bar").style.width = p !== null ? `${(100 * p).toFixed(1)}%` : "0%";
    $("strip").style.setProperty("--genre-color", top ? colorOf(top) : "var(--faint)");

    const taste = st.isNumber(msg.taste) ? Math.min(1, Math.max(0, msg.taste)) : null;
    const tasteEl = $("taste");
    tasteEl.textContent = taste !== null ? `${Math.round(100 * taste)}%` : "–";
    tasteEl.dataset.value = taste !== null ? taste.toFixed(4) : "";
    $("strip").style.setProperty("--taste-color", taste !== null ? st.tasteColor(taste) : "var(--faint)");
  }

  function onState(state) {
    document.body.dataset.state = state;
    const el = $("state");
    el.dataset.state = state;
    el.textContent = STATE_TEXT[state] || state;
  }

  st.connect({ onHello, onScores, onEvent() {}, onState });
})();
