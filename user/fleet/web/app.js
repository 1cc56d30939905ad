// The dashboard's entry: the login, the top bar (fleet name, user and role, light/dark,
// log out) and the hash router (#/overview, #/agents, #/agents/NAME, #/history, #/services,
// #/config).

import * as pages from "./pages.js";
import { api, clear, errorBox, h, setUnauthorizedHandler, state } from "./util.js";

const root = document.getElementById("app");

const ROUTES = [
    ["overview", "Overview", pages.overview],
    ["agents", "Agents", pages.agents],
    ["history", "Push history", pages.history],
    ["services", "Services", pages.services],
    ["config", "Configuration", pages.config],
];

// ---- light / dark --------------------------------------------------------------------------

function initialTheme() {
    const saved = localStorage.getItem("pf-theme");
    if (saved === "light" || saved === "dark") return saved;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function setTheme(theme) {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem("pf-theme", theme);
    const b = document.getElementById("theme-toggle");
    if (b) b.textContent = theme === "dark" ? "Light" : "Dark";
}

// ---- login -------------------------------------------------------------------------------

function showLogin(message) {
    document.title = "Log in · peakflow fleet";
    const user = h("input", { id: "login-user", name: "user", autocomplete: "username", required: true });
    const password = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
    const status = h("div", { id: "login-error" }, message ? errorBox(message) : null);
    const form = h(
        "form",
        {
            class: "login card",
            id: "login-form",
            on: {
                submit: async (e) => {
                    e.preventDefault();
                    try {
                        const who = await api("/api/v1/login", { method: "POST", body: { user: user.value, password: password.value }, login: true });
                        password.value = "";
                        await start(who);
                    } catch (err) {
                        clear(status, errorBox(err));
                    }
                },
            },
        },
        h("h1", {}, "peakflow fleet"),
        h("p", { class: "muted" }, "Log in with your collector user."),
        h("label", {}, "User", user),
        h("label", {}, "Password", password),
        status,
        h("button", { type: "submit", class: "btn btn-primary", id: "login-submit" }, "Log in"),
    );
    clear(root, h("div", { class: "login-page" }, form));
    user.focus();
}

async function logout() {
    try {
        await api("/api/v1/logout", { method: "POST", login: true });
    } finally {
        state.user = "";
        state.csrf = "";
        showLogin("");
    }
}

// ---- the app -----------------------------------------------------------------------------

let main = null;

function topBar() {
    const theme = document.documentElement.dataset.theme;
    return h(
        "header",
        { class: "topbar" },
        h("div", { class: "brand" }, h("img", { src: "/ui/icon.svg", alt: "" }), h("span", { id: "fleet-name" }, state.fleet || "peakflow fleet")),
        h(
            "nav",
            { class: "nav" },
            ROUTES.map(([id, label]) => h("a", { href: `#/${id}`, id: `nav-${id}`, dataset: { route: id } }, label)),
        ),
        h(
            "div",
            { class: "user" },
            h("span", { id: "who" }, state.user),
            h("span", { class: `tag tag-role`, id: "role" }, state.role),
            h("button", { type: "button", class: "btn", id: "theme-toggle", on: { click: () => setTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark") } }, theme === "dark" ? "Light" : "Dark"),
            h("button", { type: "button", class: "btn", id: "logout", on: { click: logout } }, "Log out"),
        ),
    );
}

// Each route renders into a view of its own: a page still loading when the next route
// starts (a click, or the login's first page and a hash change at once) goes on filling its
// detached view and never overwrites the newer page.
let routeSeq = 0;

async function route() {
    if (!main) return;
    const seq = ++routeSeq;
    const parts = (location.hash.replace(/^#\/?/, "") || "overview").split("/");
    const id = parts[0];
    for (const a of document.querySelectorAll(".nav a")) a.classList.toggle("active", a.dataset.route === id);
    main.dataset.page = id;
    main.setAttribute("aria-busy", "true");
    const view = h("div", { class: "view" });
    clear(main, view);
    try {
        if (id === "agents" && parts[1]) {
            document.title = `${decodeURIComponent(parts[1])} · peakflow fleet`;
            await pages.agent(view, decodeURIComponent(parts.slice(1).join("/")));
        } else {
            const r = ROUTES.find(([rid]) => rid === id) || ROUTES[0];
            document.title = `${r[1]} · ${state.fleet || "peakflow fleet"}`;
            await r[2](view);
        }
    } catch (err) {
        if (state.user) clear(view, errorBox(err));
    } finally {
        if (seq === routeSeq) main.setAttribute("aria-busy", "false");
    }
}

async function start(who) {
    state.user = who.user;
    state.role = who.role;
    state.csrf = who.csrf_token || "";
    const o = await api("/api/v1/overview");
    state.fleet = o.fleet;
    state.timezone = o.timezone;
    main = h("main", { id: "main", class: "main" });
    clear(root, topBar(), main);
    await route();
}

setUnauthorizedHandler((message) => {
    main = null;
    state.csrf = "";
    showLogin(message);
});
window.addEventListener("hashchange", route);
setTheme(initialTheme());

(async () => {
    try {
        await start(await api("/api/v1/me", { login: true }));
    } catch (err) {
        showLogin(err.status === 401 ? "" : err.message);
    }
})();
