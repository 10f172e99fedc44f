// Part Comparer page: upload an STL file, show the ranked parts.
// Plain DOM, no framework; all text goes through textContent.
"use strict";

const MAX_BYTES = 10 * 1024 * 1024;
const $ = (sel) => document.querySelector(sel);

function setStatus(text, isError) {
  const s = $("#status");
  s.textContent = text;
  s.classList.toggle("error", Boolean(isError));
}

function el(tag, props, children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const c of children || []) e.append(c);
  return e;
}

function preview(id) {
  return "/api/parts/" + encodeURIComponent(id) + "/preview.png";
}

function showResults(data) {
  const ol = $("#results");
  ol.replaceChildren();
  for (const r of data.results) {
    const li = el("li", {}, [
      el("img", { src: preview(r.id), alt: r.name, width: 120, height: 120, loading: "lazy" }),
      el("span", { className: "name", textContent: r.name }),
      el("span", { className: "score", textContent: r.score.toFixed(4), title: "similarity score, 0 to 1" }),
    ]);
    li.dataset.part = r.id;
    li.dataset.score = String(r.score);
    ol.append(li);
  }
  const q = data.query;
  $("#query-preview").src = q.preview;
  $("#query-info").textContent = q.triangles + " triangles (" + q.format + " STL)";
  $("#query").hidden = false;
}

async function compare() {
  const file = $("#stl").files[0];
  if (!file) {
    setStatus("Choose an STL file first.", true);
    return;
  }
  if (file.size > MAX_BYTES) {
    setStatus("The file is larger than 10 MiB.", true);
    return;
  }
  const form = new FormData();
  form.append("file", file);
  const button = $("#compare");
  button.disabled = true;
  setStatus("Comparing " + file.name + "…");
  try {
    const res = await fetch("/api/compare?k=12", { method: "POST", body: form });
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      // not JSON: handled below
    }
    if (!res.ok) {
      throw new Error((data && data.error) || "the server answered " + res.status);
    }
    showResults(data);
    setStatus(file.name + ": " + data.results.length + " most similar parts.");
  } catch (err) {
    $("#results").replaceChildren();
    $("#query").hidden = true;
    setStatus("Error: " + err.message, true);
  } finally {
    button.disabled = false;
  }
}

async function loadCollection() {
  try {
    const res = await fetch("/api/parts");
    if (!res.ok) throw new Error(String(res.status));
    const data = await res.json();
    $("#count").textContent = String(data.parts.length);
    $("#collection").replaceChildren(...data.parts.map((p) =>
      el("li", {}, [el("a", {
        href: "/api/parts/" + encodeURIComponent(p.id) + "/model.stl",
        textContent: p.name,
        download: p.id + ".stl",
      })])));
  } catch (err) {
    $("#count").textContent = "?";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#compare").addEventListener("click", compare);
  loadCollection();
});
