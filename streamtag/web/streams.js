// streamtag serve's index page: polls /streams and renders one row per stream. Colours come from each
// stream's hello (label_colors) through its feed, so this page asks /streams only: the top genre is a name.
(function () {
  "use strict";
  const POLL_MS = 2000;
  const $ = (id) => document.getElementById(id);

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function link(href, text) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  }

  function render(index) {
    const model = index.model || {};
    $("model").textContent = [model.name, model.version].filter(Boolean).join(" ");
    const up = index.streams.filter((s) => s.state === "up").length;
    $("summary").textContent = `${up} of ${index.streams.length} streams up (${index.provider || ""})`;
    const rows = index.streams.map((s) => {
      const tr = document.createElement("tr");
      tr.dataset.id = s.id;
      tr.dataset.state = s.state;
      const top = cell(s.top || "–", "top");
      top.dataset.label = s.top || "";
      const uptime = s.uptime_s === null ? "–" : `${Math.round(s.uptime_s)} s`;
      const feed = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${s.feed}`;
      const links = document.createElement("td");
      links.append(link(`/dashboard?feed=${encodeURIComponent(feed)}`, "dashboard"), " ",
                   link(`/overlay?feed=${encodeURIComponent(feed)}`, "overlay"));
      tr.append(cell(s.id), cell(s.error ? `${s.state}: ${s.error}` : s.state, "state"), top, cell(uptime),
                cell(s.source), links);
      return tr;
    });
    $("streams").replaceChildren(...rows);
  }

  async function poll() {
    try {
      const response = await fetch("/streams", { cache: "no-store" });
      if (response.ok) render(await response.json());
    } catch (error) {
      $("summary").textContent = "the server does not answer; retrying";
    }
    setTimeout(poll, POLL_MS);
  }

  poll();
})();
