#pragma once
// Helpers for parsing config sections with yaml-cpp. Every error names the file, line,
// column and the dotted key, so a section parser in its own file (push, reports, export,
// host watch) reports errors the same way as the top-level keys.

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "peakflow/common/error.hpp"

namespace pf {

class Parser {
  public:
    explicit Parser(std::string source) : source_(std::move(source)) {}

    Error error_at(const YAML::Mark& m, const std::string& key, const std::string& what) const {
        std::string where = source_;
        if (!m.is_null()) where += ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
        return Error(where + ": " + (key.empty() ? "" : "key '" + key + "': ") + what);
    }

    template <typename T>
    Result<T> scalar(const YAML::Node& n, const std::string& key, const char* type_name) const {
        if (!n.IsScalar()) return error_at(n.Mark(), key, std::string("expected ") + type_name);
        try {
            return n.as<T>();
        } catch (const YAML::Exception&) {
            return error_at(n.Mark(), key, std::string("expected ") + type_name + ", got '" + n.Scalar() + "'");
        }
    }

    Result<uint32_t> bounded(const YAML::Node& n, const std::string& key, uint64_t lo, uint64_t hi) const {
        auto v = scalar<int64_t>(n, key, "an integer");
        if (!v) return v.error();
        if (*v < static_cast<int64_t>(lo) || *v > static_cast<int64_t>(hi))
            return error_at(
                n.Mark(), key,
                "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + std::to_string(*v));
        return static_cast<uint32_t>(*v);
    }

    // The one idiom every section parser needs: read the scalar into `out`, or return the
    // error naming file:line:col and the key. `out` is left alone on error.
    template <typename T>
    Status read(const YAML::Node& n, const std::string& key, const char* type_name, T& out) const {
        auto v = scalar<T>(n, key, type_name);
        if (!v) return v.error();
        out = std::move(*v);
        return Ok{};
    }
    // An integer in [lo, hi] into any integral or enum-sized field.
    template <typename T>
    Status read_bounded(const YAML::Node& n, const std::string& key, uint64_t lo, uint64_t hi, T& out) const {
        auto v = bounded(n, key, lo, hi);
        if (!v) return v.error();
        out = static_cast<T>(*v);
        return Ok{};
    }
    // The child `name` of the mapping `n`, when present (`parent.name` in errors); absent
    // leaves `out` at its default.
    template <typename T>
    Status read_child(const YAML::Node& n, const std::string& parent, const char* name, const char* type_name,
                      T& out) const {
        if (!n[name]) return Ok{};
        return read(n[name], parent + "." + name, type_name, out);
    }
    template <typename T>
    Status read_child_bounded(const YAML::Node& n, const std::string& parent, const char* name, uint64_t lo,
                              uint64_t hi, T& out) const {
        if (!n[name]) return Ok{};
        return read_bounded(n[name], parent + "." + name, lo, hi, out);
    }
    // Read, then validate: `check` gets the value read and returns why it is wrong ("" when
    // it is fine); that error is at the value's own position. `out` is left alone on error.
    template <typename T, typename Check>
    Status read_checked(const YAML::Node& n, const std::string& key, const char* type_name, T& out, Check check) const {
        T v{};
        if (auto st = read(n, key, type_name, v); !st) return st;
        if (std::string why = check(std::as_const(v)); !why.empty()) return error_at(n.Mark(), key, why);
        out = std::move(v);
        return Ok{};
    }
    template <typename T, typename Check>
    Status read_child_checked(const YAML::Node& n, const std::string& parent, const char* name, const char* type_name,
                              T& out, Check check) const {
        if (!n[name]) return Ok{};
        return read_checked(n[name], parent + "." + name, type_name, out, std::move(check));
    }
    // A number of seconds in [lo, hi], fractions allowed (timeouts, back-offs).
    Status read_seconds(const YAML::Node& n, const std::string& key, double lo, double hi, double& out) const {
        return read_checked(n, key, "a number of seconds", out, [&](double v) {
            return v >= lo && v <= hi ? std::string()
                                      : "must be between " + std::to_string(lo) + " and " + std::to_string(hi);
        });
    }
    Status read_child_seconds(const YAML::Node& n, const std::string& parent, const char* name, double lo, double hi,
                              double& out) const {
        if (!n[name]) return Ok{};
        return read_seconds(n[name], parent + "." + name, lo, hi, out);
    }
    // A sequence of scalars, each read as T (and checked, when a check is given) into `out`,
    // which is emptied first. "expected <list_what>" when `n` is not a sequence; an item's
    // error is at the item but names `key` itself, without an index.
    template <typename T, typename Check>
    Status read_list(const YAML::Node& n, const std::string& key, const char* list_what, const char* item_type,
                     std::vector<T>& out, Check check) const {
        if (!n.IsSequence()) return error_at(n.Mark(), key, std::string("expected ") + list_what);
        out.clear();
        for (const auto& item : n) {
            T v{};
            if (auto st = read_checked(item, key, item_type, v, check); !st) return st;
            out.push_back(std::move(v));
        }
        return Ok{};
    }
    template <typename T>
    Status read_list(const YAML::Node& n, const std::string& key, const char* list_what, const char* item_type,
                     std::vector<T>& out) const {
        return read_list(n, key, list_what, item_type, out, [](const T&) { return std::string(); });
    }
    // A mapping of name: scalar (HTTP headers) into (name, value) pairs in file order; `out`
    // is emptied first. "expected <map_what>" when `n` is not a mapping; a value's error
    // names `key.name`.
    template <typename T>
    Status read_map(const YAML::Node& n, const std::string& key, const char* map_what, const char* value_type,
                    std::vector<std::pair<std::string, T>>& out) const {
        if (!n.IsMap()) return error_at(n.Mark(), key, std::string("expected ") + map_what);
        out.clear();
        for (const auto& kv : n) {
            T v{};
            if (auto st = read(kv.second, key + "." + kv.first.Scalar(), value_type, v); !st) return st;
            out.emplace_back(kv.first.Scalar(), std::move(v));
        }
        return Ok{};
    }
    const std::string& source() const { return source_; }

  private:
    std::string source_;
};

// The text of a config file, or "cannot read config file: PATH: <errno text>" (a directory
// is refused by name, as reading one would give an empty config).
inline Result<std::string> read_config_text(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return Error("cannot read config file", path, EISDIR);
    std::ifstream in(path);
    if (!in) return Error("cannot read config file", path, errno);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// HTTP headers from the config (a mapping read with read_map) go into requests as they
// are: a name must be an RFC 9110 token, a value must hold no CR, LF or other control
// character (a line break would add header lines of its own). Errors at the entry.
inline Status check_http_headers(const Parser& p, const YAML::Node& n, const std::string& key) {
    if (!n || !n.IsMap()) return Ok{};
    for (const auto& kv : n) {
        const std::string name = kv.first.Scalar();
        const std::string k = key + "." + name;
        bool token = !name.empty();
        for (unsigned char c : name)
            token = token && (std::isalnum(c) ||
                              std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos);
        if (!token)
            return p.error_at(kv.first.Mark(), k, "not a valid header name (letters, digits and !#$%&'*+-.^_`|~)");
        for (unsigned char c : kv.second.Scalar())
            if ((c < 0x20 && c != '\t') || c == 0x7F)
                return p.error_at(kv.second.Mark(), k,
                                  "a header value must not contain CR, LF or other control characters");
    }
    return Ok{};
}

// Keys allowed in a nested mapping; anything else is an error at its own position.
inline Status check_keys(const Parser& p, const YAML::Node& n, const std::string& parent,
                         std::initializer_list<const char*> allowed) {
    if (!n.IsMap()) return p.error_at(n.Mark(), parent, "expected a mapping");
    for (const auto& kv : n) {
        std::string k = kv.first.Scalar();
        bool ok = false;
        for (const char* a : allowed) ok = ok || k == a;
        if (!ok) return p.error_at(kv.first.Mark(), parent + "." + k, "unknown key");
    }
    return Ok{};
}

}  // namespace pf
