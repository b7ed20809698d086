/* The overlay: the top genre with its probability, and taste. See feed.js for the connection and states, and
 * docs/overlay.md for the URL options. */
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
  // Without a feed (streamtag stopped, or not started yet) the strip would sit dimmed on the stream for as long
  // as that lasts, so by default it goes after this long; a restart of streamtag is shorter and keeps it.
  const OFFLINE_HIDE_AFTER_S = 10;
  const OFFLINE_STATES = new Set(["connecting", "disconnected"]);
  // Rendering does not scale text exactly in proportion: each pass aims a little under what would just fit, and
  // a second or third pass absorbs what is left.
  const FIT_PASSES = 4;
  const FIT_MARGIN = 0.995;

  const scaleParam = Number(params.get("scale"));
  const SCALE = Number.isFinite(scaleParam) && scaleParam >= 0.5 && scaleParam <= 4 ? scaleParam : 1; // absent: Number(null) is 0
  const align = ALIGN[params.get("align")];
  if (align) document.body.style.setProperty("--align", align);
  const OFFLINE_HIDE_MS = offlineHideMs(params.get("offline"));

  /** ?offline=show: never hide; hide: at once; a number of seconds: after that long; else the default. */
  function offlineHideMs(value) {
    if (value === "show") return null;
    if (value === "hide") return 0;
    const s = Number(value);
    if (value !== null && value.trim() !== "" && Number.isFinite(s) && s >= 0) return 1000 * s;
    return 1000 * OFFLINE_HIDE_AFTER_S;
  }

  let fittedWidth = null; // the strip's width when it was last fitted

  /** The requested scale, or the largest below it at which the strip and the page's padding fit the viewport. */
  function fit() {
    const body = document.body;
    const strip = $("strip");
    let scale = SCALE;
    body.style.setProperty("--scale", String(scale));
    const vw = window.innerWidth;
    const vh = window.innerHeight;
    if (vw > 0 && vh > 0) { // a browser source not sized yet: fit when it is (the resize event)
      for (let pass = 0; pass < FIT_PASSES; pass += 1) {
        const box = strip.getBoundingClientRect();
        const pad = parseFloat(getComputedStyle(body).paddingLeft); // the same on all four sides
        const k = Math.min(vw / (box.width + 2 * pad), vh / (box.height + 2 * pad));
        if (k >= 1) break;
        scale *= k * FIT_MARGIN;
        body.style.setProperty("--scale", String(scale));
      }
    }
    fittedWidth = strip.offsetWidth;
  }

  /** After a render: only a value no sizer foresaw (a label the hello did not list) can change the width. */
  function refitIfResized() {
    if ($("strip").offsetWidth !== fittedWidth) fit();
  }

  let offlineTimer = null;

  /** Hide the strip once it has been offline for ?offline's delay; show it again as soon as it is not. */
  function hideWhileOffline(offline) {
    const strip = $("strip");
    if (!offline) {
      clearTimeout(offlineTimer);
      offlineTimer = null;
      strip.removeAttribute("data-hidden");
    } else if (OFFLINE_HIDE_MS !== null && offlineTimer === null && !strip.hasAttribute("data-hidden")) {
      offlineTimer = setTimeout(() => {
        offlineTimer = null;
        strip.setAttribute("data-hidden", "");
      }, OFFLINE_HIDE_MS);
    }
  }

  function colorOf(label) {
    return st.colorFor(label, labelColors);
  }

  function onHello(msg) {
    labelColors = msg.label_colors && typeof msg.label_colors === "object" ? msg.label_colors : {};
    const labels = Array.isArray(msg.labels) ? msg.labels : [];
    const names = [...st.NO_GENRE_TEXTS, ...labels.map(st.displayName)].map((name) => {
      const span = document.createElement("span");
      span.textContent = name;
      return span;
    });
    $("genre-sizer").replaceChildren(...names);
    fit();
  }

  function onScores(msg) {
    const top = typeof msg.top === "string" && msg.top ? msg.top : null;
    const p = top && msg.genre && st.isNumber(msg.genre[top]) ? msg.genre[top] : null;
    const genreEl = $("top-genre");
    genreEl.dataset.label = top || "";
    genreEl.textContent = top ? st.displayName(top) : st.noGenreText(msg);
    document.body.dataset.content = typeof msg.state === "string" ? msg.state : "";
    $("top-prob").textContent = p !== null ? `${Math.round(100 * p)}%` : "";
    $("top-prob-bar").style.width = p !== null ? `${(100 * p).toFixed(1)}%` : "0%";
    $("strip").style.setProperty("--genre-color", top ? colorOf(top) : "var(--faint)");

    const taste = st.isNumber(msg.taste) ? Math.min(1, Math.max(0, msg.taste)) : null;
    const tasteEl = $("taste");
    tasteEl.textContent = taste !== null ? `${Math.round(100 * taste)}%` : "–";
    tasteEl.dataset.value = taste !== null ? taste.toFixed(4) : "";
    $("strip").style.setProperty("--taste-color", taste !== null ? st.tasteColor(taste) : "var(--faint)");
    refitIfResized();
  }

  function onState(state) {
    document.body.dataset.state = state;
    const el = $("state");
    el.dataset.state = state;
    el.textContent = STATE_TEXT[state] || state;
    hideWhileOffline(OFFLINE_STATES.has(state));
    refitIfResized();
  }

  fit();
  window.addEventListener("resize", fit);
  st.connect({ onHello, onScores, onEvent() {}, onState });
})();
