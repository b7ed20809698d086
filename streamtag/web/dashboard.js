/* The dashboard: renders the feed's hello, scores and events into dashboard.html. See feed.js for the
 * connection and its states. Everything kept in memory is bounded: the timeline holds a fixed number of hops.
 */
(function () {
  "use strict";

  const st = window.streamtag;
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(window.location.search);

  const TIMELINE_SECONDS = clampNumber(params.get("history_s"), 120, 2, 3600); // how far back the timeline goes
  const DEFAULT_HOP_S = 0.5; // used until the hello says otherwise
  const MAX_TIMELINE_HOPS = 7200; // a ceiling whatever hop the feed announces
  const LEVEL_FLOOR_DBFS = -60;
  const TIMELINE_TICK_S = 30;
  const FEW_GENRES = 6; // up to this many labels get bigger bars, grouped in the middle of their card

  const view = {
    labels: [],
    colors: new Map(),
    labelColors: {}, // hello.label_colors
    genreRows: new Map(), // label -> {row, bar, value}
    moodRows: new Map(), // name -> {bar, value}
    moodNames: [],
    tagSlots: [], // {cell, name, value, bar} by rank: the feed's top tags change, their places stay
    hopS: DEFAULT_HOP_S,
    timeline: new st.Ring(TIMELINE_SECONDS / DEFAULT_HOP_S),
    top: null,
    topSinceT: null,
    retryAt: null,
    retryTicker: null,
  };

  function clampNumber(text, fallback, lo, hi) {
    const x = Number(text);
    if (text === null || !Number.isFinite(x)) return fallback;
    return Math.min(hi, Math.max(lo, x));
  }

  function percent(p) {
    return `${Math.round(100 * p)}%`;
  }

  function formatDuration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s} s`;
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  function colorOf(label) {
    if (!view.colors.has(label)) view.colors.set(label, st.colorFor(label, view.labelColors));
    return view.colors.get(label);
  }

  // ---- structure, built from the hello (or, failing that, from the first scores) ----

  function buildGenres(labels) {
    const same = labels.length === view.labels.length && labels.every((l, i) => l === view.labels[i]);
    if (same) return;
    view.labels = labels.slice();
    view.colors.clear();
    labels.forEach((label) => view.colors.set(label, st.colorFor(label, view.labelColors)));
    const container = $("genres");
    container.replaceChildren();
    container.classList.toggle("few", labels.length <= FEW_GENRES);
    view.genreRows.clear();
    for (const label of labels) {
      const row = document.createElement("div");
      row.className = "genre-row";
      row.dataset.label = label;
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = st.displayName(label);
      const track = document.createElement("div");
      track.className = "track";
      const bar = document.createElement("div");
      bar.className = "genre-bar";
      bar.dataset.label = label;
      bar.dataset.p = "0";
      bar.style.setProperty("--bar-color", colorOf(label));
      bar.style.width = "0%";
      track.append(bar);
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = "–";
      row.append(name, track, value);
      container.append(row);
      view.genreRows.set(label, { row, bar, value });
    }
  }

  function buildMoods(names) {
    const same = names.length === view.moodNames.length && names.every((n, i) => n === view.moodNames[i]);
    if (same) return;
    view.moodNames = names.slice();
    const container = $("moods");
    container.replaceChildren();
    view.moodRows.clear();
    for (const name of names) {
      const cell = document.createElement("div");
      cell.className = "mood";
      cell.dataset.name = name;
      const label = document.createElement("div");
      label.className = "name";
      label.textContent = st.displayName(name);
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = "–";
      label.append(value);
      const track = document.createElement("div");
      track.className = "track";
      const bar = document.createElement("div");
      bar.className = "mood-bar";
      bar.dataset.name = name;
      bar.dataset.value = "0";
      bar.style.width = "0%";
      track.append(bar);
      cell.append(label, track);
      container.append(cell);
      view.moodRows.set(name, { bar, value });
    }
  }

  function buildTagSlot() {
    const cell = document.createElement("div");
    cell.className = "tag";
    const label = document.createElement("div");
    label.className = "name";
    const name = document.createElement("span");
    name.className = "tag-name";
    const value = document.createElement("span");
    value.className = "value";
    label.append(name, value);
    const track = document.createElement("div");
    track.className = "track";
    const bar = document.createElement("div");
    bar.className = "tag-bar";
    bar.style.width = "0%";
    track.append(bar);
    cell.append(label, track);
    $("tags").append(cell);
    return { cell, name, value, bar };
  }

  function setTimelineCapacity(hopS) {
    view.hopS = hopS > 0 ? hopS : DEFAULT_HOP_S;
    const hops = Math.min(MAX_TIMELINE_HOPS, Math.round(TIMELINE_SECONDS / view.hopS));
    view.timeline.resize(hops);
    $("timeline").dataset.capacity = String(view.timeline.capacity);
    $("timeline-span").textContent = `last ${formatDuration(view.timeline.capacity * view.hopS)}`;
    drawTimeline();
  }

  // ---- feed handlers ----

  function onHello(msg) {
    // A (re)connection is a new stream whose time starts again: "for N s" counts from its first top.
    view.top = undefined;
    view.labelColors = msg.label_colors && typeof msg.label_colors === "object" ? msg.label_colors : {};
    view.labels = []; // rebuilt below with these colours
    if (Array.isArray(msg.labels)) buildGenres(msg.labels.map(String));
    if (Array.isArray(msg.mood_names)) buildMoods(msg.mood_names.map(String));
    const model = msg.model || {};
    $("model").textContent = [model.name, model.version].filter(Boolean).join(" ");
    $("provider").textContent = msg.provider || "–";
    $("taste-source").textContent = msg.taste_source ? `· ${msg.taste_source}` : "";
    $("source").textContent = typeof msg.source === "string" ? msg.source : "";
    const note = $("schema-note");
    note.hidden = !(st.isNumber(msg.schema_version) && msg.schema_version > st.SCHEMA_VERSION);
    note.textContent = note.hidden ? "" : `feed schema ${msg.schema_version}, page knows ${st.SCHEMA_VERSION}`;
    if (st.isNumber(msg.hop_s)) setTimelineCapacity(msg.hop_s);
  }

  function onScores(msg) {
    const genre = msg.genre && typeof msg.genre === "object" ? msg.genre : {};
    const missing = Object.keys(genre).filter((label) => !view.genreRows.has(label));
    if (missing.length) buildGenres(view.labels.concat(missing));
    const moods = msg.moods && typeof msg.moods === "object" ? msg.moods : {};
    const missingMoods = Object.keys(moods).filter((name) => !view.moodRows.has(name));
    if (missingMoods.length) buildMoods(view.moodNames.concat(missingMoods));

    const top = typeof msg.top === "string" && msg.top ? msg.top : null;
    renderTop(top, genre, msg);
    renderGenres(genre, top);
    renderTaste(msg.taste);
    if (typeof msg.taste_source === "string") $("taste-source").textContent = `· ${msg.taste_source}`;
    renderMoods(moods);
    renderTags(msg.tags);
    renderLevel(msg.level_dbfs);
    $("latency").textContent = st.isNumber(msg.latency_ms) ? `${Math.round(msg.latency_ms)} ms` : "–";
    $("latency").dataset.ms = st.isNumber(msg.latency_ms) ? String(msg.latency_ms) : "";
    $("seq").textContent = st.isNumber(msg.seq) ? String(msg.seq) : "–";
    $("stream-time").textContent = st.isNumber(msg.t) ? formatDuration(msg.t) : "–";
    const dropped = st.isNumber(msg.dropped) ? msg.dropped : 0;
    $("dropped").dataset.dropped = String(dropped);
    $("dropped").textContent = dropped ? `${dropped} dropped` : "no drops";

    view.timeline.push({ top, p: top && st.isNumber(genre[top]) ? genre[top] : 0, silent: !!msg.silent });
    $("timeline").dataset.count = String(view.timeline.length);
    drawTimeline();
  }

  function onEvent(_msg) {
    // top_changed is also visible in the scores' `top`, which the page renders; source_down and source_up are
    // states (onState): nothing more to show.
  }

  function onState(state, detail) {
    document.body.dataset.state = state;
    const el = $("state");
    el.dataset.state = state;
    clearInterval(view.retryTicker);
    view.retryTicker = null;
    el.title = state === "source-down" ? detail.why : "";
    if (state === "disconnected" || state === "source-down") {
      $("latency").textContent = "–"; // nothing is being processed; the other values stay, dimmed, as the last seen
      $("latency").dataset.ms = "";
      if (view.timeline.length && !view.timeline.last().gap) {
        view.timeline.push({ gap: true });
        $("timeline").dataset.count = String(view.timeline.length);
        drawTimeline();
      }
    }
    if (state === "disconnected") {
      view.retryAt = detail.retryAt;
      const tick = () => {
        const s = Math.max(0, Math.ceil((view.retryAt - Date.now()) / 1000));
        el.textContent = s > 0 ? `disconnected · retry in ${s} s` : "disconnected · retrying";
      };
      tick();
      view.retryTicker = setInterval(tick, 250);
    } else {
      el.textContent = {
        connecting: "connecting", waiting: "waiting for audio", live: "live", silent: "silent",
        "source-down": "source down",
      }[state] || state;
    }
  }

  // ---- rendering ----

  function renderTop(top, genre, msg) {
    const el = $("top-genre");
    if (top !== view.top) {
      view.top = top;
      view.topSinceT = st.isNumber(msg.t) ? msg.t : null;
    }
    el.dataset.label = top || "";
    el.textContent = top ? st.displayName(top) : st.noGenreText(msg);
    document.body.dataset.content = typeof msg.state === "string" ? msg.state : "";
    el.style.setProperty("--genre-color", top ? colorOf(top) : "var(--faint)");
    const p = top ? genre[top] : null;
    $("top-prob").textContent = st.isNumber(p) ? percent(p) : "";
    const since = top && view.topSinceT !== null && st.isNumber(msg.t) ? msg.t - view.topSinceT : null;
    $("since").textContent = since !== null && since >= 1 ? `for ${formatDuration(since)}` : "";
  }

  function renderGenres(genre, top) {
    for (const [label, row] of view.genreRows) {
      const known = st.isNumber(genre[label]); // nothing is known during silence: the feed sends {}
      const p = known ? Math.min(1, Math.max(0, genre[label])) : 0;
      row.bar.style.width = `${(100 * p).toFixed(1)}%`;
      row.bar.dataset.p = p.toFixed(4);
      row.value.textContent = known ? percent(p) : "–";
      row.row.classList.toggle("is-top", label === top);
    }
  }

  function renderTaste(taste) {
    const el = $("taste");
    const arc = $("taste-arc");
    if (!st.isNumber(taste)) {
      el.textContent = "–";
      el.dataset.value = "";
      arc.setAttribute("stroke-dasharray", "0 100");
      arc.style.visibility = "hidden"; // a round cap would draw a dot even at zero length
      return;
    }
    const p = Math.min(1, Math.max(0, taste));
    el.textContent = percent(p);
    el.dataset.value = p.toFixed(4);
    arc.style.visibility = "visible";
    arc.setAttribute("stroke-dasharray", `${(100 * p).toFixed(1)} 100`);
    arc.style.setProperty("--taste-color", st.tasteColor(p));
  }

  function renderMoods(moods) {
    for (const [name, row] of view.moodRows) {
      const known = st.isNumber(moods[name]);
      const v = known ? Math.min(1, Math.max(0, moods[name])) : 0;
      row.bar.style.width = `${(100 * v).toFixed(1)}%`;
      row.bar.dataset.value = v.toFixed(4);
      row.value.textContent = known ? percent(v) : "–";
    }
  }

  function renderTags(tags) {
    const list = Array.isArray(tags) ? tags.filter((t) => t && typeof t.name === "string" && st.isNumber(t.p)) : [];
    $("tags-card").hidden = list.length === 0;
    document.body.classList.toggle("has-tags", list.length > 0);
    while (view.tagSlots.length < list.length) view.tagSlots.push(buildTagSlot());
    view.tagSlots.forEach((slot, i) => {
      const tag = list[i];
      slot.cell.hidden = !tag;
      if (!tag) return;
      const p = Math.min(1, Math.max(0, tag.p));
      slot.cell.dataset.name = tag.name;
      slot.cell.dataset.p = p.toFixed(4);
      slot.name.textContent = st.displayName(tag.name);
      slot.value.textContent = percent(p);
      slot.bar.style.width = `${(100 * p).toFixed(1)}%`;
    });
  }

  function renderLevel(dbfs) {
    const el = $("level");
    const fill = $("level-fill");
    if (!st.isNumber(dbfs)) {
      el.textContent = "–";
      el.dataset.dbfs = "";
      fill.style.width = "0%";
      return;
    }
    const frac = Math.min(1, Math.max(0, 1 - dbfs / LEVEL_FLOOR_DBFS));
    fill.style.width = `${(100 * frac).toFixed(1)}%`;
    // Keep the green/amber/red gradient fixed to the meter, not stretched over the filled part.
    fill.style.backgroundSize = frac > 0 ? `${(100 / frac).toFixed(1)}% 100%` : "100% 100%";
    el.dataset.dbfs = dbfs.toFixed(1);
    el.replaceChildren(document.createTextNode(dbfs <= LEVEL_FLOOR_DBFS ? `< ${LEVEL_FLOOR_DBFS}` : dbfs.toFixed(0)));
    const unit = document.createElement("span");
    unit.className = "unit";
    unit.textContent = "dBFS";
    el.append(unit);
  }

  function drawTimeline() {
    const canvas = $("timeline-canvas");
    const box = canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(box.width * dpr));
    const height = Math.max(1, Math.round(box.height * dpr));
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    const capacity = view.timeline.capacity;
    const items = view.timeline.items;
    const col = width / capacity;
    const styles = getComputedStyle(document.body);
    const faint = styles.getPropertyValue("--faint").trim() || "#3a4350";
    const muted = styles.getPropertyValue("--muted").trim() || "#8b96a5";
    const remPx = parseFloat(getComputedStyle(document.documentElement).fontSize) || 14;
    const bandH = height - Math.round(1.3 * remPx * dpr); // the rest is the time axis

    ctx.fillStyle = "#0b0e13";
    ctx.fillRect(0, 0, width, bandH);

    // Merge runs of equal entries into segments; the newest entry sits at the right edge.
    const x0 = width - items.length * col;
    let i = 0;
    while (i < items.length) {
      const item = items[i];
      let j = i + 1;
      while (j < items.length && sameKind(items[j], item)) j += 1;
      const x = x0 + i * col;
      const w = (j - i) * col;
      if (item.gap) {
        ctx.fillStyle = "rgba(255, 90, 95, 0.55)";
        ctx.fillRect(x + w / 2 - dpr, 0, 2 * dpr, bandH);
      } else if (item.silent || !item.top) {
        ctx.fillStyle = faint;
        ctx.fillRect(x, bandH * 0.42, w, bandH * 0.16);
      } else {
        ctx.fillStyle = colorOf(item.top);
        ctx.fillRect(x, 0, w, bandH);
        const text = st.displayName(item.top);
        ctx.font = `650 ${Math.round(bandH * 0.38)}px ${styles.getPropertyValue("--font")}`;
        if (ctx.measureText(text).width + 12 * dpr < w) {
          ctx.fillStyle = "rgba(10, 12, 16, 0.85)";
          ctx.textBaseline = "middle";
          ctx.fillText(text, x + 6 * dpr, bandH / 2);
        }
      }
      i = j;
    }

    // Time axis: a tick every TIMELINE_TICK_S, counted back from now at the right edge.
    ctx.fillStyle = muted;
    ctx.font = `${Math.round(0.8 * remPx * dpr)}px ${styles.getPropertyValue("--font")}`;
    ctx.textBaseline = "bottom";
    const spanS = capacity * view.hopS;
    let tick = spanS / 2;
    if (spanS > 4 * TIMELINE_TICK_S) tick = 2 * TIMELINE_TICK_S;
    else if (spanS >= TIMELINE_TICK_S) tick = TIMELINE_TICK_S;
    for (let s = 0; s <= spanS + 1e-6; s += tick) {
      const x = width - (s / spanS) * width;
      const label = s === 0 ? "now" : `-${formatDuration(s)}`;
      const w = ctx.measureText(label).width;
      ctx.fillText(label, Math.min(width - w, Math.max(0, x - w / 2)), height);
    }
  }

  function sameKind(a, b) {
    if (a.gap || b.gap) return false;
    if (a.silent || !a.top) return b.silent || !b.top;
    return !b.silent && a.top === b.top;
  }

  // ---- start ----

  setTimelineCapacity(DEFAULT_HOP_S);
  window.addEventListener("resize", drawTimeline);
  function onAck(msg) {
    const text = msg.ok ? msg.message : msg.error;
    $("label-answer").textContent = typeof text === "string" ? text : "";
    $("label-answer").dataset.ok = msg.ok ? "true" : "false";
  }

  const client = st.connect({ onHello, onScores, onEvent, onState, onAck });
  for (const id of ["like", "dislike"]) {
    $(id).addEventListener("click", () => {
      if (!client.send({ type: "label", value: $(id).dataset.value })) {
        $("label-answer").textContent = "not connected: the label was not sent";
      }
    });
  }
  $("feed-url").textContent = client.url;
})();
