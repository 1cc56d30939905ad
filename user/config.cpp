#include "peakflow/config.hpp"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

namespace pf {
namespace {

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

    const std::string& source() const { return source_; }

  private:
    std::string source_;
};

using KeyHandler = std::function<Status(const Parser&, const YAML::Node&, const std::string&, Config&)>;

const std::map<std::string, KeyHandler>& handlers() {
    static const std::map<std::string, KeyHandler> h = {
        {"interfaces",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             if (!n.IsSequence()) return p.error_at(n.Mark(), k, "expected a list of interface names");
             c.interfaces.clear();
             for (const auto& item : n) {
                 auto name = p.scalar<std::string>(item, k, "an interface name");
                 if (!name) return name.error();
                 if (name->empty() || name->size() > 15 || name->find('/') != std::string::npos)
                     return p.error_at(item.Mark(), k, "'" + *name + "' is not a valid interface name");
                 c.interfaces.push_back(*name);
             }
             return Ok{};
         }},
        {"xdp_mode",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             auto s = p.scalar<std::string>(n, k, "auto, native, generic or off");
             if (!s) return s.error();
             auto m = parse_xdp_mode(*s);
             if (!m) return p.error_at(n.Mark(), k, "expected auto, native, generic or off, got '" + *s + "'");
             c.xdp_mode = *m;
             return Ok{};
         }},
        {"drain_interval",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             auto v = p.bounded(n, k, 1, 3600);
             if (!v) return v.error();
             c.drain_interval = std::chrono::seconds(*v);
             return Ok{};
         }},
        {"mac_capacity",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             auto v = p.bounded(n, k, 16, 1u << 20);
             if (!v) return v.error();
             c.mac_capacity = *v;
             return Ok{};
         }},
        {"flow_capacity",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             auto v = p.bounded(n, k, 16, 1u << 24);
             if (!v) return v.error();
             c.flow_capacity = *v;
             return Ok{};
         }},
        {"flows",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             auto v = p.scalar<bool>(n, k, "true or false");
             if (!v) return v.error();
             c.flows = *v;
             return Ok{};
         }},
        {"log_level",
         [](const Parser& p, const YAML::Node& n, const std::string& k, Config& c) -> Status {
             auto v = p.scalar<std::string>(n, k, "a log level");
             if (!v) return v.error();
             static const char* levels[] = {"trace", "debug", "info", "warn", "error"};
             for (const char* l : levels)
                 if (*v == l) {
                     c.log_level = *v;
                     return Ok{};
                 }
             return p.error_at(n.Mark(), k, "expected trace, debug, info, warn or error, got '" + *v + "'");
         }},
    };
    return h;
}

}  // namespace

Result<Config> parse_config(const std::string& text, const std::string& source) {
    Parser p(source);
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
        return p.error_at(e.mark, "", "YAML syntax error: " + e.msg);
    }
    Config c;
    c.source = source;
    if (root.IsNull()) return c;  // an empty file: defaults
    if (!root.IsMap()) return p.error_at(root.Mark(), "", "expected a mapping of keys at the top level");
    for (const auto& kv : root) {
        std::string key = kv.first.Scalar();
        auto h = handlers().find(key);
        if (h == handlers().end()) return p.error_at(kv.first.Mark(), key, "unknown key");
        if (auto st = h->second(p, kv.second, key, c); !st) return st.error();
    }
    return c;
}

Result<Config> load_config_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) return Error("cannot read config file", path, errno);
    std::stringstream ss;
    ss << in.rdbuf();
    return parse_config(ss.str(), path);
}

Result<Config> load_config(const std::string& explicit_path) {
    if (!explicit_path.empty()) return load_config_file(explicit_path);
    if (std::filesystem::exists(kDefaultConfigPath)) return load_config_file(kDefaultConfigPath);
    return Config{};
}

std::string dump_config(const Config& c) {
    YAML::Emitter out;
    out << YAML::BeginMap;
    out << YAML::Key << "interfaces" << YAML::Value << YAML::Flow << c.interfaces;
    out << YAML::Key << "xdp_mode" << YAML::Value << to_string(c.xdp_mode);
    out << YAML::Key << "drain_interval" << YAML::Value << c.drain_interval.count();
    out << YAML::Key << "mac_capacity" << YAML::Value << c.mac_capacity;
    out << YAML::Key << "flow_capacity" << YAML::Value << c.flow_capacity;
    out << YAML::Key << "flows" << YAML::Value << c.flows;
    out << YAML::Key << "log_level" << YAML::Value << c.log_level;
    out << YAML::EndMap;
    return std::string(out.c_str()) + "\n";
}

}  // namespace pf
