// The pages: each renders into `main` from the collector's JSON API (docs/fleet.md,
// "Dashboard") and returns nothing; errors show in the page with the collector's reason.

import { timeChart, dayBars } from "./chart.js";
import {
    api, badge, bytes, card, clear, collectorNow, dataTable, errorBox, h, humanBps, localTime, percent, state,
} from "./util.js";

function figures(f, label) {
    return h(
        "div",
        { class: "figures" },
        h("div", { class: "stat-label" }, label),
        h("div", { class: "stat-value", dataset: { field: "total" } }, bytes(f.total_bytes)),
        h(
            "dl",
            { class: "pairs" },
            h("dt", {}, "Up"), h("dd", { dataset: { field: "up" } }, bytes(f.up_bytes)),
            h("dt", {}, "Down"), h("dd", { dataset: { field: "down" } }, bytes(f.down_bytes)),
            h("dt", {}, "Peak up / down"), h("dd", {}, bytes(f.peak_up_bytes), " / ", bytes(f.peak_down_bytes)),
            h("dt", {}, "Off-peak up / down"), h("dd", {}, bytes(f.offpeak_up_bytes), " / ", bytes(f.offpeak_down_bytes)),
        ),
    );
}

function agentLink(name) {
    return h("a", { href: `#/agents/${encodeURIComponent(name)}` }, name);
}

function switchLabel(v) {
    if (v === true) return h("span", { class: "tag tag-on" }, "on");
    if (v === false) return h("span", { class: "tag tag-off" }, "off");
    return h("span", { class: "tag", title: "not set centrally: the agent's own config file decides" }, "file");
}

// ---- Overview ----------------------------------------------------------------------------

export async function overview(main) {
    const o = await api("/api/v1/overview");
    const a = o.agents;
    const counts = h(
        "div",
        { class: "counts", id: "agent-counts" },
        ["online", "offline", "never"].map((s) =>
            h("div", { class: `count count-${s}`, dataset: { state: s } }, h("span", { class: "count-n" }, String(a[s])), h("span", { class: "count-label" }, s)),
        ),
    );
    const offline = a.offline_agents.length
        ? h(
              "ul",
              { class: "offline-list", id: "offline-agents" },
              a.offline_agents.map((x) =>
                  h("li", {}, agentLink(x.name), ` offline for ${x.for} (last report ${x.last_seen})`),
              ),
          )
        : h("p", { class: "muted" }, "No agent is offline.");
    const top = dataTable(
        [
            { key: "name", label: "Agent", render: (r) => agentLink(r.name) },
            { key: "node", label: "Node" },
            { key: "up_bytes", label: "Up", num: true, render: (r) => bytes(r.up_bytes) },
            { key: "down_bytes", label: "Down", num: true, render: (r) => bytes(r.down_bytes) },
            { key: "total_bytes", label: "Total", num: true, render: (r) => bytes(r.total_bytes) },
        ],
        o.top_agents,
        { empty: "No traffic today yet", sortKey: "total_bytes", desc: true },
    );
    top.table.id = "top-agents";
    const alerts = o.open_alerts.length
        ? h("ul", { class: "alert-list", id: "open-alerts" }, o.open_alerts.map((x) => h("li", {}, h("span", { class: "muted" }, x.time), " ", x.title)))
        : h("p", { class: "muted", id: "open-alerts" }, "No open alerts.");
    clear(
        main,
        h("h1", {}, "Overview"),
        h(
            "div",
            { class: "grid3" },
            card("Agents", counts, offline),
            h("div", { id: "today" }, card(`Today (${o.today.day})`, figures(o.today, "Total"))),
            h("div", { id: "month" }, card(`Billing month ${o.month.month}`, figures(o.month, "Total"))),
        ),
        card(
            `Last 24 hours, 5-minute buckets (${o.last24h.from} to ${o.last24h.to})`,
            h("div", { id: "fleet-chart" }, timeChart(o.last24h.points, o.last24h, "the fleet's last 24 hours")),
        ),
        h("div", { class: "grid2" }, card("Top agents today", top.table), card("Open alerts", alerts)),
    );
}

// ---- Agents ------------------------------------------------------------------------------

export async function agents(main) {
    const r = await api("/api/v1/agents");
    const t = dataTable(
        [
            { key: "name", label: "Name", render: (x) => agentLink(x.name) },
            { key: "node", label: "Node" },
            { key: "host", label: "Host" },
            { key: "iface", label: "Interface" },
            { key: "mac", label: "MAC" },
            { key: "version", label: "Version" },
            { key: "state", label: "State", render: (x) => badge(x.state) },
            { key: "last_seen_epoch", label: "Last report", value: (x) => x.last_seen_epoch ?? -1, render: (x) => x.last_seen ?? "-" },
            { key: "backlog", label: "Backlog", num: true },
            { key: "push_enabled", label: "Switch", value: (x) => String(x.push_enabled), render: (x) => switchLabel(x.push_enabled) },
        ],
        r.agents,
        { empty: "No agents yet: peakflow-collector token create NAME" },
    );
    t.table.id = "agents-table";
    const search = h("input", {
        type: "search",
        id: "agent-search",
        placeholder: "Search name, node, host, interface, MAC, version",
        on: { input: (e) => t.search(e.target.value) },
    });
    clear(main, h("h1", {}, "Agents"), card(null, h("div", { class: "toolbar" }, search), t.table));
}

// ---- One agent ---------------------------------------------------------------------------

export async function agent(main, name) {
    const list = await api("/api/v1/agents");
    const a = list.agents.find((x) => x.name === name);
    if (!a) {
        clear(main, h("h1", {}, name), errorBox(`no agent named '${name}'`));
        return;
    }
    const q = encodeURIComponent(name);
    const dayChart = h("div", { id: "day-chart" });
    const dayTotals = h("div", { id: "day-totals" });
    const dayMacs = h("div", { id: "day-macs" });
    const monthChart = h("div", { id: "month-chart" });
    const monthTotals = h("div", { id: "month-totals" });
    const dayInput = h("input", { type: "date", id: "day-input" });
    const monthInput = h("input", { type: "month", id: "month-input" });

    async function loadDay(day) {
        try {
            const r = await api(`/api/v1/traffic?agent=${q}${day ? `&day=${day}` : ""}`);
            dayInput.value = r.day;
            clear(dayChart, timeChart(r.points, r, `5-minute traffic of ${name} on ${r.day}`));
            clear(dayTotals, h("p", { class: "muted" }, `${r.points.length} stored 5-minute buckets on ${r.day} (${r.from} to ${r.to}); shaded: peak hours`), figures(r.totals, "Day total"));
            clear(dayMacs, macTable(r));
        } catch (e) {
            clear(dayChart, errorBox(e));
        }
    }
    async function loadMonth(month) {
        try {
            const r = await api(`/api/v1/traffic?agent=${q}${month ? `&month=${month}` : `&month=${dayInput.value.slice(0, 7)}`}`);
            monthInput.value = r.month;
            clear(monthChart, dayBars(r.days, `daily traffic of ${name} in ${r.month}`));
            clear(monthTotals, figures(r.totals, `Billing month ${r.month}`), p95Table(r.p95));
        } catch (e) {
            clear(monthChart, errorBox(e));
        }
    }
    dayInput.addEventListener("change", () => loadDay(dayInput.value));
    monthInput.addEventListener("change", () => loadMonth(monthInput.value));

    const history = h("div", { id: "agent-history" });
    const health = h("div", { id: "host-health" });
    const episodes = h("div", { id: "episodes" });
    const info = h(
        "dl",
        { class: "desc" },
        [
            ["Node", a.node || "-"], ["Host", a.host || "-"], ["Interface", a.iface || "-"], ["MAC", a.mac || "-"],
            ["Version", a.version || "-"], ["Last report", a.last_seen ?? "-"], ["Report interval", `${a.interval} s`],
            ["Backlog", String(a.backlog)], ["Push switch", switchLabel(a.push_enabled)],
        ].map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
    );
    clear(
        main,
        h("h1", {}, h("a", { href: "#/agents", class: "back" }, "Agents"), " / ", name, " ", badge(a.state)),
        card("Agent", info),
        card("5-minute traffic", h("div", { class: "toolbar" }, h("label", {}, "Day ", dayInput)), dayChart, dayTotals),
        card("Peers (MACs) on the day", dayMacs),
        card("Daily traffic", h("div", { class: "toolbar" }, h("label", {}, "Billing month ", monthInput)), monthChart, monthTotals),
        card("Host health", health),
        card("Runaway processes (ended episodes, newest first)", episodes),
        card("Push history", history),
    );
    await loadDay("");
    await loadMonth("");
    try {
        const host = await api(`/api/v1/host?agent=${q}`);
        clear(health, hostHealth(host));
        clear(episodes, episodeTable(host.episodes).table);
    } catch (e) {
        clear(health, errorBox(e));
    }
    const hist = await api(`/api/v1/history?agent=${q}&page_size=20`);
    clear(history, historyTable(hist.items).table);
}

// A day's traffic per peer MAC, the largest first (the collector sends at most 500).
function macTable(r) {
    const t = dataTable(
        [
            { key: "mac", label: "MAC" },
            { key: "iface", label: "Interface" },
            { key: "up_bytes", label: "Up", num: true, render: (x) => bytes(x.up_bytes) },
            { key: "down_bytes", label: "Down", num: true, render: (x) => bytes(x.down_bytes) },
            { key: "total_bytes", label: "Total", num: true, render: (x) => bytes(x.total_bytes) },
        ],
        r.macs,
        { empty: "No peer MAC on this day", sortKey: "total_bytes", desc: true },
    );
    t.table.id = "mac-table";
    const more = r.macs_total > r.macs.length ? h("p", { class: "muted" }, `The ${r.macs.length} largest of ${r.macs_total} MACs.`) : null;
    return h("div", {}, t.table, more);
}

// The month's 95th percentile per interface (as `report --month`), bit/s.
function p95Table(p95) {
    if (!p95) return h("p", { class: "muted", id: "p95" }, "95th percentile: no traffic recorded.");
    const t = dataTable(
        [
            { key: "iface", label: "Interface" },
            { key: "up_bps", label: "95th percentile up", num: true, render: (x) => (x.up_bps === null ? "n/a" : humanBps(x.up_bps)) },
            { key: "down_bps", label: "95th percentile down", num: true, render: (x) => (x.down_bps === null ? "n/a" : humanBps(x.down_bps)) },
            { key: "intervals_with_data", label: "5-minute intervals with data", num: true, render: (x) => `${x.intervals_with_data} of ${p95.intervals}` },
        ],
        p95.interfaces,
        { empty: "No interface" },
    );
    t.table.id = "p95";
    return [h("p", { class: "muted" }, `95th percentile of the 5-minute rates up to ${p95.until} (n/a: older 5-minute rows were removed).`), t.table];
}

// The newest host sample and the last 24 hours' average and maximum of each figure.
function hostHealth(r) {
    if (!r.latest) return h("p", { class: "muted", id: "host-none" }, "No host sample in the last 24 hours (the agent's host watch is off, or it does not report).");
    const l = r.latest;
    const of = (pct, total) => [percent(pct), total === null ? "" : [" of ", bytes(total)]];
    const latest = h(
        "dl",
        { class: "pairs", id: "host-latest" },
        [
            ["Sampled", l.time],
            ["CPU", percent(l.cpu)],
            ["Memory used", of(l.mem_used, l.mem_total)],
            ["Disk used", of(l.disk_used, l.disk_total)],
            ["Load (1 min)", l.load1 === null ? "-" : l.load1.toFixed(2)],
            ["Temperature", l.temperature === null ? "-" : `${l.temperature.toFixed(1)} °C`],
        ].map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
    );
    const d = r.last24h;
    const row = (label, v, fmt) => h("tr", {}, h("td", {}, label), h("td", { class: "num" }, v ? fmt(v.avg) : "-"), h("td", { class: "num" }, v ? fmt(v.max) : "-"));
    const summary = h(
        "table",
        { class: "table", id: "host-24h" },
        h("thead", {}, h("tr", {}, h("th", {}, `Last 24 hours (${d.samples} samples)`), h("th", { class: "num" }, "Average"), h("th", { class: "num" }, "Maximum"))),
        h(
            "tbody",
            {},
            row("CPU", d.cpu, percent),
            row("Memory used", d.mem_used, percent),
            row("Disk used", d.disk_used, percent),
            row("Load (1 min)", d.load1, (x) => x.toFixed(2)),
            row("Temperature", d.temperature, (x) => `${x.toFixed(1)} °C`),
        ),
    );
    return h("div", { class: "grid2" }, latest, summary);
}

// Ended runaway-process episodes, newest first; the process name and user are the host's
// text, shown as text.
function episodeTable(items) {
    const t = dataTable(
        [
            { key: "ended_epoch", label: "Ended", render: (x) => x.ended },
            { key: "name", label: "Process", render: (x) => h("code", { class: "proc-name" }, x.name) },
            { key: "pid", label: "PID", num: true },
            { key: "user", label: "User" },
            { key: "since_epoch", label: "Since", render: (x) => x.since },
            { key: "for_seconds", label: "For", num: true, render: (x) => x.for },
            { key: "end_reason", label: "End" },
            { key: "peak_cpu", label: "Peak CPU", num: true, render: (x) => percent(x.peak_cpu) },
            { key: "peak_mem", label: "Peak memory", num: true, render: (x) => percent(x.peak_mem) },
        ],
        items,
        { empty: "No runaway process", sortKey: "ended_epoch", desc: true },
    );
    t.table.id = "episodes-table";
    return t;
}

// ---- Push history ------------------------------------------------------------------------

function historyTable(items) {
    const t = dataTable(
        [
            { key: "update_time_epoch", label: "Time", render: (r) => r.update_time },
            { key: "agent", label: "Agent", render: (r) => agentLink(r.agent) },
            { key: "node_name", label: "Node" },
            { key: "host_name", label: "Host" },
            { key: "sink", label: "Sink" },
            { key: "kind", label: "Kind" },
            { key: "period", label: "Period" },
            { key: "push_data_bytes", label: "Value", num: true, render: (r) => bytes(r.push_data_bytes) },
            { key: "status", label: "Status", render: (r) => h("span", { class: `tag tag-${r.status}` }, r.status) },
            { key: "attempts", label: "Attempts", num: true },
            { key: "error", label: "Last error", render: (r) => h("span", { class: "error-text" }, r.error) },
        ],
        items,
        { empty: "No push history matches", sortKey: "update_time_epoch", desc: true, rowClass: (r) => (r.status === "failed" ? "row-failed" : "") },
    );
    t.table.classList.add("history-table");
    return t;
}

export async function history(main) {
    const fields = {};
    const input = (k, label, placeholder) => {
        fields[k] = h("input", { name: k, id: `f-${k}`, placeholder: placeholder || "" });
        return h("label", {}, label, fields[k]);
    };
    fields.status = h(
        "select",
        { name: "status", id: "f-status" },
        ["", "pending", "failed", "sent", "skipped"].map((s) => h("option", { value: s }, s || "any")),
    );
    const out = h("div", { id: "history-result" });
    const csv = h("a", { class: "btn", id: "history-csv", download: "push-history.csv", href: "/api/v1/history.csv" }, "Export CSV");
    let page = 1;
    const query = () => {
        const p = new URLSearchParams();
        for (const [k, el] of Object.entries(fields)) if (el.value.trim()) p.set(k, el.value.trim());
        return p;
    };
    async function load() {
        const p = query();
        csv.href = `/api/v1/history.csv${p.toString() ? `?${p}` : ""}`;
        p.set("page", String(page));
        p.set("page_size", "50");
        try {
            const r = await api(`/api/v1/history?${p}`);
            const pages = Math.max(1, Math.ceil(r.total / r.page_size));
            clear(
                out,
                h("p", { class: "muted", id: "history-total" }, `${r.total} row(s), page ${r.page} of ${pages}`),
                historyTable(r.items).table,
                h(
                    "div",
                    { class: "pager" },
                    h("button", { type: "button", disabled: page <= 1, on: { click: () => { page--; load(); } } }, "Previous"),
                    h("button", { type: "button", disabled: page >= pages, on: { click: () => { page++; load(); } } }, "Next"),
                ),
            );
        } catch (e) {
            clear(out, errorBox(e));
        }
    }
    const form = h(
        "form",
        {
            class: "filters",
            id: "history-filters",
            on: {
                submit: (e) => {
                    e.preventDefault();
                    page = 1;
                    load();
                },
            },
        },
        input("agent", "Agent"),
        input("node", "Node"),
        input("host", "Host"),
        h("label", {}, "Status", fields.status),
        input("from", "From", "YYYY-MM-DD HH:MM"),
        input("to", "To", "YYYY-MM-DD HH:MM"),
        h("button", { type: "submit", class: "btn btn-primary", id: "history-apply" }, "Filter"),
        csv,
    );
    clear(main, h("h1", {}, "Push history"), card(null, form, out));
    await load();
}

// ---- Services ----------------------------------------------------------------------------

export async function services(main) {
    const end = collectorNow();
    const r = await api("/heartbeat/status", { method: "POST", body: { start_time: end - 3600, end_time: end } });
    const sections = [];
    for (const [type, list] of Object.entries(r.service_status)) {
        if (type === "database") continue;
        const t = dataTable(
            [
                { key: "service_name", label: "Service" },
                { key: "ip_address", label: "Address" },
                { key: "is_online", label: "State", value: (x) => String(x.is_online), render: (x) => badge(x.is_online ? "online" : "offline") },
                { key: "last_report_time", label: "Last report", render: (x) => localTime(x.last_report_time) },
            ],
            list,
            { empty: "No reports in the last hour" },
        );
        t.table.dataset.type = type;
        sections.push(h("h3", {}, type), t.table);
    }
    const db = r.service_status.database;
    const dbs = dataTable(
        [
            { key: "name", label: "Database" },
            { key: "target", label: "Target" },
            { key: "is_connected", label: "State", value: (x) => String(x.is_connected), render: (x) => badge(x.is_connected ? "online" : "offline") },
            { key: "connection_time", label: "Probed", render: (x) => localTime(x.connection_time) },
            { key: "duration_ms", label: "ms", num: true },
            { key: "error_message", label: "Error", render: (x) => x.error_message ?? "" },
        ],
        db.databases || [],
        { empty: "No probe yet" },
    );
    dbs.table.id = "databases";
    // The measured traffic between services: one small table, a row per pair of addresses
    // of an edge (redis_to_backend: "redis → backend"), and the edges with none named.
    const edges = Object.entries(r.traffic_status);
    const pairs = edges.flatMap(([edge, list]) => list.map((x) => ({ edge: edge.replace(/_to_/, " → ").replace(/_/g, " "), ...x })));
    const quiet = edges.filter(([, list]) => !list.length).map(([edge]) => edge.replace(/_to_/, " → ").replace(/_/g, " "));
    let traffic = h("p", { class: "muted", id: "traffic-admins-only" }, "The traffic between services is shown to admins only.");
    if (state.role === "admin") {
        const t = dataTable(
            [
                { key: "edge", label: "Between" },
                { key: "source_ip", label: "Source" },
                { key: "target_ip", label: "Target" },
                { key: "bytes", label: "Bytes", num: true, render: (x) => bytes(x.bytes) },
                { key: "packets", label: "Packets", num: true },
                { key: "flows", label: "Connections", num: true },
                { key: "data_count", label: "data_count", num: true },
            ],
            pairs,
            { empty: "No traffic measured in the last hour", sortKey: "bytes", desc: true },
        );
        t.table.id = "traffic-table";
        traffic = [t.table, quiet.length && pairs.length ? h("p", { class: "muted" }, `Nothing measured: ${quiet.join(", ")}.`) : null];
    }
    clear(
        main,
        h("h1", {}, "Services"),
        h("p", { class: "muted" }, `Heartbeats of the last hour, up to ${localTime(end * 1000)}.`),
        card("Services by type", h("div", { id: "service-types" }, sections)),
        card("Database probe", h("p", {}, "All connected: ", badge(db.is_connected ? "online" : "offline")), dbs.table),
        card("Traffic between services", h("div", { id: "service-traffic" }, traffic)),
    );
}

// ---- Configuration -----------------------------------------------------------------------

// Keys whose value false stops what the customer or the sinks receive: asked again first.
const STOPS_REPORTING = new Set(["push.enabled", "customer_report.enabled"]);

// The fields a central change usually is (the requirements' global and per-machine
// settings), each with its effective value and source beside it; any other key
// (push.sinks.NAME.*, customer_report.fields) goes through the key/value editor below.
const FIELDS = [
    { key: "push.enabled", label: "Pushes (the switch)", kind: "bool" },
    { key: "customer_report.enabled", label: "Customer hourly report", kind: "bool" },
    { key: "customer_report.provider_id", label: "Provider id", kind: "text" },
    { key: "customer_report.provider_uiid", label: "Provider uiid", kind: "text" },
    { key: "customer_report.isp_id", label: "ISP id", kind: "text" },
    { key: "customer_report.device_type", label: "Device type", kind: "text" },
    { key: "adjustments", label: "Offsets (adjustments, JSON)", kind: "json", hint: '[{"direction": "tx", "factor": 1.05}]' },
    { key: "interfaces", label: "Interfaces (comma separated)", kind: "list", hint: "eth0, eth1" },
];

// The input of a field, and how to read a value from it (undefined: nothing given).
function fieldInput(f) {
    if (f.kind === "bool") {
        const el = h("select", {}, h("option", { value: "" }, "-"), h("option", { value: "true" }, "on"), h("option", { value: "false" }, "off"));
        return { el, read: () => (el.value === "" ? undefined : el.value === "true") };
    }
    const el = h("input", { placeholder: f.hint ?? "" });
    if (f.kind === "json") return { el, read: () => (el.value.trim() === "" ? undefined : JSON.parse(el.value)) };
    if (f.kind === "list")
        return { el, read: () => (el.value.trim() === "" ? undefined : el.value.split(",").map((x) => x.trim()).filter((x) => x)) };
    return { el, read: () => (el.value.trim() === "" ? undefined : el.value.trim()) };
}

function fieldsForm(entries, submit) {
    const by = new Map(entries.map((e) => [e.key, e]));
    const rows = FIELDS.map((f) => {
        const input = fieldInput(f);
        const e = by.get(f.key);
        const set = async () => {
            let value;
            try {
                value = input.read();
            } catch {
                return submit.fail(`${f.key}: the value must be JSON, e.g. ${f.hint}`);
            }
            if (value === undefined) return submit.fail(`${f.key}: give a value first`);
            await submit("PUT", f.key, value);
        };
        return h(
            "tr",
            { dataset: { key: f.key } },
            h("td", {}, f.label, h("div", { class: "muted" }, h("code", {}, f.key))),
            h("td", { class: "effective" }, e ? h("code", {}, JSON.stringify(e.value)) : h("span", { class: "muted" }, "agent's file")),
            h("td", { class: "source" }, e ? e.source : "-"),
            h("td", {}, input.el),
            h("td", {},
                h("button", { type: "button", class: "btn btn-primary field-set", on: { click: set } }, "Set"), " ",
                h("button", { type: "button", class: "btn field-unset", disabled: !e, on: { click: () => submit("DELETE", f.key) } }, "Unset")),
        );
    });
    return h(
        "table",
        { class: "table", id: "config-form" },
        h("thead", {}, h("tr", {}, ["Setting", "Effective value", "Source", "New value", ""].map((t) => h("th", {}, t)))),
        h("tbody", {}, rows),
    );
}

function entriesTable(entries, id) {
    const t = dataTable(
        [
            { key: "key", label: "Key" },
            { key: "value", label: "Value", value: (x) => JSON.stringify(x.value), render: (x) => h("code", {}, JSON.stringify(x.value)) },
            { key: "source", label: "Source" },
        ],
        entries,
        { empty: "Nothing set: the agents' own config files apply" },
    );
    t.table.id = id;
    return t.table;
}

export async function config(main, selected = "") {
    const admin = state.role === "admin";
    const [fleet, list, audit] = await Promise.all([
        api("/api/v1/config"),
        api("/api/v1/agents"),
        api("/api/v1/audit?limit=50"),
    ]);
    const scope = h(
        "select",
        { id: "config-scope" },
        h("option", { value: "" }, "the fleet"),
        list.agents.map((a) => h("option", { value: a.name }, a.name)),
    );
    const shown = h("div", { id: "config-entries" });
    const form = h("div", { id: "config-fields" });
    const status = h("div", { id: "config-status" });
    // One change (PUT: set, DELETE: unset) of `key` in the scope shown, asked again first
    // when it stops reporting; the page is drawn again with the new state.
    const submit = async (method, key, value) => {
        const agent = scope.value;
        const where = agent ? `agent ${agent}` : "the whole fleet";
        if (method === "PUT" && STOPS_REPORTING.has(key) && value === false &&
            !window.confirm(`Set ${key} to false for ${where}? Reports stop until it is set back.`))
            return;
        try {
            const q = new URLSearchParams({ key, ...(agent ? { agent } : {}) });
            const r = method === "PUT"
                ? await api("/api/v1/config", { method: "PUT", body: { key, value, ...(agent ? { agent } : {}) } })
                : await api(`/api/v1/config?${q}`, { method: "DELETE" });
            await config(main, agent);
            clear(document.getElementById("config-status"), h("div", { class: "alert alert-ok" }, `Saved: version ${r.version}.`));
        } catch (e) {
            clear(status, errorBox(e));
        }
    };
    submit.fail = (why) => clear(status, errorBox(why));
    async function showScope() {
        try {
            if (!scope.value) {
                clear(shown, h("p", { class: "muted" }, `Fleet-wide set, version ${fleet.version}.`), entriesTable(fleet.entries, "config-table"));
                if (admin) clear(form, fieldsForm(fleet.entries, submit));
                return;
            }
            const c = await api(`/api/v1/config?agent=${encodeURIComponent(scope.value)}`);
            const problems = c.applied.problems.length
                ? h("ul", { class: "error-text" }, c.applied.problems.map((p) => h("li", {}, `${p.key}: ${p.message}`)))
                : null;
            clear(
                shown,
                h("p", { class: "muted" }, `Effective for ${c.agent}: version ${c.version}; the agent runs version ${c.applied.version}.`),
                problems,
                entriesTable(c.entries, "config-table"),
            );
            if (admin) clear(form, fieldsForm(c.entries, submit));
        } catch (e) {
            clear(shown, errorBox(e));
        }
    }
    scope.value = selected;
    scope.addEventListener("change", showScope);

    let editor = h("p", { class: "muted", id: "config-readonly" }, "Read only: changes need the admin role.");
    if (admin) {
        const key = h("input", { id: "config-key", placeholder: "push.sinks.ding.enabled" });
        const value = h("input", { id: "config-value", placeholder: "false (JSON)" });
        const change = async (method) => {
            let value_;
            try {
                if (method === "PUT") value_ = JSON.parse(value.value);
            } catch {
                clear(status, errorBox("the value must be JSON: false, 1.05, \"0042\", [\"eth1\"], {\"factor\": 1.05}"));
                return;
            }
            await submit(method, key.value.trim(), value_);
        };
        editor = h(
            "div",
            { class: "filters", id: "config-editor" },
            h("label", {}, "Key", key),
            h("label", {}, "Value (JSON)", value),
            h("button", { type: "button", class: "btn btn-primary", id: "config-set", on: { click: () => change("PUT") } }, "Set"),
            h("button", { type: "button", class: "btn", id: "config-unset", on: { click: () => change("DELETE") } }, "Unset"),
        );
    }
    const auditTable = dataTable(
        [
            { key: "time_epoch", label: "Time", render: (x) => x.time },
            { key: "version", label: "Version", num: true },
            { key: "who", label: "Who" },
            { key: "from", label: "From" },
            { key: "agent", label: "Scope", value: (x) => x.agent ?? "fleet", render: (x) => x.agent ?? "fleet" },
            { key: "key", label: "Key" },
            { key: "old", label: "Old", value: (x) => JSON.stringify(x.old), render: (x) => (x.old === null ? "-" : h("code", {}, JSON.stringify(x.old))) },
            { key: "new", label: "New", value: (x) => JSON.stringify(x.new), render: (x) => (x.new === null ? "-" : h("code", {}, JSON.stringify(x.new))) },
        ],
        audit.audit,
        { empty: "No change yet", sortKey: "time_epoch", desc: true },
    );
    auditTable.table.id = "audit-table";
    clear(
        main,
        h("h1", {}, "Configuration"),
        card("Central configuration", h("div", { class: "toolbar" }, h("label", {}, "Scope ", scope)), shown,
            admin ? h("h3", {}, "Settings") : null, form,
            admin ? h("h3", {}, "Any other key") : null, editor, status),
        card("Audit log (last 50 changes)", auditTable.table),
    );
    await showScope();
}
