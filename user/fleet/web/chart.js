// Small SVG charts (no library: a few hundred bytes of drawing instead of a 200 KB canvas
// library, and every point is an element a test can count and a person can hover).
// Colours come from style.css classes, so light and dark apply by themselves.

import { humanBytes, exactBytes } from "./util.js";

const NS = "http://www.w3.org/2000/svg";
const W = 960;
const H = 240;
const PAD = { left: 64, right: 12, top: 12, bottom: 28 };

function svg(tag, attrs, ...children) {
    const el = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    for (const c of children) if (c !== "") el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return el;
}

// A round upper bound for the axis in binary units: 1, 2 or 5 times a power of ten of
// B, KiB, MiB, ... so that the four ticks read as round figures.
function niceMax(v) {
    if (v <= 0) return 1024;
    const unit = Math.pow(1024, Math.min(6, Math.floor(Math.log(v) / Math.log(1024))));
    const scaled = v / unit;
    const p = Math.pow(10, Math.floor(Math.log10(scaled)));
    for (const m of [1, 2, 4, 5, 10]) if (m * p >= scaled) return m * p * unit;
    return 10 * p * unit;
}

function frame(max, caption) {
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": caption });
    const plotH = H - PAD.top - PAD.bottom;
    for (let i = 0; i <= 4; i++) {
        const y = PAD.top + plotH - (plotH * i) / 4;
        root.append(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: "grid" }));
        root.append(svg("text", { x: PAD.left - 6, y: y + 4, class: "axis", "text-anchor": "end" }, humanBytes(Math.round((max * i) / 4))));
    }
    return root;
}

function legend() {
    return svg(
        "g",
        { class: "legend" },
        svg("rect", { x: W - 190, y: 2, width: 10, height: 10, class: "down" }),
        svg("text", { x: W - 176, y: 11, class: "axis" }, "down (rx)"),
        svg("rect", { x: W - 100, y: 2, width: 10, height: 10, class: "up" }),
        svg("text", { x: W - 86, y: 11, class: "axis" }, "up (tx)"),
    );
}

// Traffic by time: one group per point (a stored 5-minute bucket) of range {from (local
// "YYYY-MM-DD HH:MM:SS"), from_epoch, to_epoch}, down stacked under up; peak buckets on a
// shaded band.
export function timeChart(points, range, caption) {
    const from = range.from_epoch;
    const to = range.to_epoch;
    const max = niceMax(Math.max(0, ...points.map((p) => p.up_bytes + p.down_bytes)));
    const root = frame(max, caption);
    const plotW = W - PAD.left - PAD.right;
    const plotH = H - PAD.top - PAD.bottom;
    const x = (t) => PAD.left + ((t - from) / (to - from)) * plotW;
    const y = (v) => (v / max) * plotH;
    const bw = Math.max(1.5, (300 / (to - from)) * plotW - 0.5);
    const base = PAD.top + plotH;
    // Ticks by the local wall clock of the range's start (the collector's zone).
    const [hh, mm] = range.from.slice(11, 16).split(":").map(Number);
    for (let i = 0; i <= 6; i++) {
        const t = from + ((to - from) * i) / 6;
        const minutes = (hh * 60 + mm + Math.round((t - from) / 60)) % 1440;
        const label = `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
        const anchor = i === 0 ? "start" : i === 6 ? "end" : "middle";
        root.append(svg("text", { x: x(t), y: H - 8, class: "axis", "text-anchor": anchor }, label));
    }
    const g = svg("g", { class: "points" });
    for (const p of points) {
        const left = x(p.start_epoch);
        const hd = y(p.down_bytes);
        const hu = y(p.up_bytes);
        const tip = `${p.start}${p.peak ? " (peak)" : ""}\nup ${humanBytes(p.up_bytes)} (${exactBytes(p.up_bytes)})\ndown ${humanBytes(p.down_bytes)} (${exactBytes(p.down_bytes)})`;
        g.append(
            svg(
                "g",
                { class: p.peak ? "pt peak" : "pt", "data-ts": p.start_epoch },
                p.peak ? svg("rect", { x: left, y: PAD.top, width: bw, height: plotH, class: "peak-band" }) : "",
                svg("rect", { x: left, y: base - hd, width: bw, height: hd, class: "down" }),
                svg("rect", { x: left, y: base - hd - hu, width: bw, height: hu, class: "up" }),
                svg("title", {}, tip),
            ),
        );
    }
    root.append(g, legend());
    return root;
}

// One bar pair per day: down and up side by side.
export function dayBars(days, caption) {
    const max = niceMax(Math.max(0, ...days.map((d) => Math.max(d.up_bytes, d.down_bytes))));
    const root = frame(max, caption);
    const plotW = W - PAD.left - PAD.right;
    const plotH = H - PAD.top - PAD.bottom;
    const slot = plotW / Math.max(1, days.length);
    const bw = Math.max(1, slot / 2 - 2);
    const base = PAD.top + plotH;
    const g = svg("g", { class: "days" });
    days.forEach((d, i) => {
        const left = PAD.left + i * slot + 1;
        const hd = (d.down_bytes / max) * plotH;
        const hu = (d.up_bytes / max) * plotH;
        g.append(
            svg(
                "g",
                { class: "day", "data-day": d.day },
                svg("rect", { x: left, y: base - hd, width: bw, height: hd, class: "down" }),
                svg("rect", { x: left + bw, y: base - hu, width: bw, height: hu, class: "up" }),
                svg("title", {}, `${d.day}\nup ${humanBytes(d.up_bytes)} (${exactBytes(d.up_bytes)})\ndown ${humanBytes(d.down_bytes)} (${exactBytes(d.down_bytes)})`),
            ),
        );
        if (i % Math.ceil(days.length / 10) === 0)
            root.append(svg("text", { x: left + bw, y: H - 8, class: "axis", "text-anchor": "middle" }, d.day.slice(5)));
    });
    root.append(g, legend());
    return root;
}
