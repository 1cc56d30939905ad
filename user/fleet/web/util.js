// The dashboard's helpers: elements built with text nodes only (agent names, push errors
// and service names come from hosts: never parsed as HTML), the JSON API, and the formats
// (times in the collector's zone, bytes in binary units with the exact figure on hover).

// csrf: the session's token (the login's or GET /api/v1/me's), sent with every change.
export const state = { user: "", role: "", csrf: "", fleet: "", timezone: "UTC", clockOffset: null };

// h("td", {class: "num", title: "…"}, "text", child, …): an element; attribute values and
// children are set as properties and text, never as markup.
export function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
        if (v === null || v === undefined || v === false) continue;
        if (k === "on") {
            for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
        } else if (k === "dataset") {
            Object.assign(el.dataset, v);
        } else if (k in el && k !== "list" && k !== "form") {
            el[k] = v;
        } else {
            el.setAttribute(k, v === true ? "" : String(v));
        }
    }
    append(el, children);
    return el;
}

function append(el, children) {
    for (const c of children.flat(Infinity)) {
        if (c === null || c === undefined || c === false) continue;
        el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
}

export function clear(el, ...children) {
    el.replaceChildren();
    append(el, children);
    return el;
}

// An API error with the collector's reason.
export class ApiError extends Error {
    constructor(status, message) {
        super(message);
        this.status = status;
    }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
    onUnauthorized = fn;
}

// fetch JSON from the collector; the session cookie goes with it (same origin), and with
// every change (any method but GET) the session's CSRF token.
export async function api(path, options = {}) {
    const init = { method: options.method || "GET", headers: {}, credentials: "same-origin" };
    if (init.method !== "GET" && state.csrf) init.headers["X-CSRF-Token"] = state.csrf;
    if (options.body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(options.body);
    }
    const res = await fetch(path, init);
    let body = null;
    const text = await res.text();
    try {
        body = text ? JSON.parse(text) : null;
    } catch {
        body = null;
    }
    if (body && typeof body.time_epoch === "number") noteClock(body.time_epoch);
    if (!res.ok) {
        const message = body && body.message ? body.message : `HTTP ${res.status}`;
        if (res.status === 401 && !options.login) onUnauthorized(message);
        throw new ApiError(res.status, message);
    }
    return body;
}

// The collector's clock, as the last answer that carried it showed it.
function noteClock(epoch) {
    state.clockOffset = epoch - Date.now() / 1000;
}
export function collectorNow() {
    return Math.floor(Date.now() / 1000 + (state.clockOffset || 0));
}

// `v` in the largest of `units` (each `step` times the last) that keeps it at least 1 once
// shown with two decimals: "1.50 MiB", not "1536.00 KiB"; "1.00 KiB", not "1024.00 B".
function scaled(v, step, units) {
    let u = 0;
    while (v >= step - 0.005 && u < units.length - 1) {
        v /= step;
        u++;
    }
    return `${v.toFixed(2)} ${units[u]}`;
}

// "1.50 MiB", "512 B": as the CLI's reports print them.
export function humanBytes(n) {
    return n < 1024 ? `${n} B` : scaled(n, 1024, ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]);
}

// "1 234 567 bytes": the exact figure, grouped for reading.
export function exactBytes(n) {
    return `${String(n).replace(/\B(?=(\d{3})+(?!\d))/g, " ")} bytes`;
}

// "373.33 bit/s", "12.50 Mbit/s": a rate in decimal units, as transit is billed.
export function humanBps(v) {
    return v === null || v === undefined ? "-" : scaled(v, 1000, ["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"]);
}

// "12.5 %": a percentage of the host stream, "-" when the host did not measure it.
export function percent(v) {
    return v === null || v === undefined ? "-" : `${v.toFixed(1)} %`;
}

// A span with readable bytes and the exact figure on hover.
export function bytes(n) {
    if (n === null || n === undefined) return h("span", { class: "muted" }, "-");
    return h("span", { class: "bytes", title: exactBytes(n) }, humanBytes(n));
}

// UTC milliseconds or an ISO string as "YYYY-MM-DD HH:MM:SS" in the collector's zone.
export function localTime(t) {
    if (t === null || t === undefined || t === "") return "-";
    const d = typeof t === "number" ? new Date(t) : new Date(t);
    if (Number.isNaN(d.getTime())) return String(t);
    const parts = {};
    const f = new Intl.DateTimeFormat("en-GB", {
        timeZone: state.timezone,
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
        hourCycle: "h23",
    });
    for (const p of f.formatToParts(d)) parts[p.type] = p.value;
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
}

export function badge(stateName) {
    const label = { online: "online", offline: "offline", never: "never" }[stateName] || stateName;
    return h("span", { class: `badge badge-${stateName}` }, label);
}

export function card(title, ...body) {
    return h("section", { class: "card" }, title ? h("h2", { class: "card-title" }, title) : null, ...body);
}

export function errorBox(err) {
    return h("div", { class: "alert alert-error", role: "alert" }, err instanceof Error ? err.message : String(err));
}

// A sortable, searchable table: columns [{key, label, value(row), render(row), num}];
// options {sortKey, desc, empty, rowClass(row)}.
export function dataTable(columns, rows, options = {}) {
    let sortKey = options.sortKey || columns[0].key;
    let desc = !!options.desc;
    let filter = "";
    const tbody = h("tbody");
    const heads = columns.map((c) =>
        h(
            "th",
            {
                class: `${c.num ? "num " : ""}sortable`,
                dataset: { key: c.key },
                on: {
                    click: () => {
                        desc = sortKey === c.key ? !desc : false;
                        sortKey = c.key;
                        draw();
                    },
                },
            },
            c.label,
        ),
    );
    function draw() {
        const col = columns.find((c) => c.key === sortKey);
        const value = col.value || ((r) => r[col.key]);
        let shown = rows.filter(
            (r) => !filter || columns.some((c) => String((c.value || ((x) => x[c.key]))(r) ?? "").toLowerCase().includes(filter)),
        );
        shown = shown.slice().sort((a, b) => {
            const x = value(a);
            const y = value(b);
            const cmp = typeof x === "number" && typeof y === "number" ? x - y : String(x ?? "").localeCompare(String(y ?? ""));
            return desc ? -cmp : cmp;
        });
        heads.forEach((th) => {
            th.classList.toggle("sorted", th.dataset.key === sortKey);
            th.classList.toggle("desc", th.dataset.key === sortKey && desc);
        });
        clear(
            tbody,
            shown.length
                ? shown.map((r) =>
                      h("tr", { class: options.rowClass ? options.rowClass(r) : "" },
                          columns.map((c) => h("td", { class: c.num ? "num" : "" }, c.render ? c.render(r) : (r[c.key] ?? "-")))),
                  )
                : h("tr", {}, h("td", { colSpan: columns.length, class: "empty" }, options.empty || "No data")),
        );
    }
    const table = h("table", { class: "table" }, h("thead", {}, h("tr", {}, heads)), tbody);
    draw();
    return {
        table,
        search(text) {
            filter = text.trim().toLowerCase();
            draw();
        },
    };
}
