// The flow export state file: what was exported per flow, so that a restart after a crash
// (kill -9) continues the deltas instead of exporting the map's entries from zero again.
//
// Text, one line each: "peakflow-export-state 1", "boot BOOT_ID", then per interface
// "iface NAME FLOW_MAP_ID COUNT" followed by COUNT lines
// "KEY_HEX BYTES PACKETS ENTRY_ID WINDOW_START ACTIVE_SINCE" (KEY_HEX: the 56 bytes of
// struct pf_flow_key).

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "peakflow/common/fd.hpp"
#include "peakflow/export/flow_export.hpp"

namespace pf {

namespace {

constexpr const char* kMagic = "peakflow-export-state 2";  // 1: per-CPU hash-map flow entries
// No flow map holds more (--flow-capacity's maximum): a larger count is a damaged file.
constexpr size_t kMaxStateFlows = size_t{1} << 22;

std::string key_hex(const pf_flow_key& k) {
    static const char hex[] = "0123456789abcdef";
    const auto* p = reinterpret_cast<const uint8_t*>(&k);
    std::string s(sizeof k * 2, '0');
    for (size_t i = 0; i < sizeof k; i++) {
        s[i * 2] = hex[p[i] >> 4];
        s[i * 2 + 1] = hex[p[i] & 15];
    }
    return s;
}

bool parse_key_hex(const std::string& s, pf_flow_key& k) {
    if (s.size() != sizeof k * 2) return false;
    auto* p = reinterpret_cast<uint8_t*>(&k);
    for (size_t i = 0; i < sizeof k; i++) {
        unsigned v = 0;
        for (size_t j = 0; j < 2; j++) {
            char c = s[i * 2 + j];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0) return false;
            v = v * 16 + static_cast<unsigned>(d);
        }
        p[i] = static_cast<uint8_t>(v);
    }
    return true;
}

bool write_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = ::write(fd, s.data() + off, s.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
    }
    return true;
}

}  // namespace

std::string render_flow_state(const FlowStateFile& st) {
    std::string out = std::string(kMagic) + "\nboot " + st.boot_id + "\n";
    char num[160];
    for (const auto& i : st.ifaces) {
        out += "iface " + i.name + " " + std::to_string(i.flow_map_id) + " " + std::to_string(i.flows.size()) + "\n";
        for (const auto& f : i.flows) {
            out += key_hex(f.key);
            std::snprintf(num, sizeof num, " %llu %llu %llu %llu %llu\n", (unsigned long long)f.bytes,
                          (unsigned long long)f.packets, (unsigned long long)f.entry_id,
                          (unsigned long long)f.window_start_ns, (unsigned long long)f.active_since_ns);
            out += num;
        }
    }
    return out;
}

Status save_flow_state(const std::string& path, const FlowStateFile& st) {
    const std::string out = render_flow_state(st);
    const std::string tmp = path + ".tmp";
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
    if (!fd.valid()) return Error("write export state", tmp, errno);
    bool ok = write_all(fd.get(), out);
    int err = errno;
    if (ok && fsync(fd.get()) != 0) ok = false, err = errno;
    fd.reset();
    if (!ok) {
        unlink(tmp.c_str());
        return Error("write export state", tmp, err);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) return Error("rename export state", tmp, errno);
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    fsync_dir(dir);
    return Ok{};
}

namespace {

Result<FlowStateFile> parse_flow_state(std::istream& in, const std::string& path) {
    FlowStateFile st;
    auto bad = [&](const std::string& what) { return Error("read export state (" + what + ")", path, EINVAL); };
    std::string line;
    if (!std::getline(in, line) || line != kMagic) return bad("not a state file");
    if (!std::getline(in, line) || line.rfind("boot ", 0) != 0) return bad("no boot line");
    st.boot_id = line.substr(5);
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        std::istringstream ls(line);
        std::string tag;
        FlowStateFile::Iface i;
        std::string count_text;
        if (!(ls >> tag >> i.name >> i.flow_map_id >> count_text) || tag != "iface")
            return bad("bad line: " + line.substr(0, 80));
        // Digits only (istream would read "-1" as SIZE_MAX), and only checked, never used to
        // allocate: the lines that follow say how many flows there really are.
        if (count_text.empty() || count_text.size() > 7 ||
            count_text.find_first_not_of("0123456789") != std::string::npos)
            return bad("bad count: " + line.substr(0, 80));
        const size_t count = std::stoul(count_text);
        if (count > kMaxStateFlows) return bad("bad count: " + line.substr(0, 80));
        for (size_t n = 0; n < count; n++) {
            if (!std::getline(in, line)) return bad("truncated");
            std::istringstream fs(line);
            std::string hex;
            FlowSnapshot f;
            if (!(fs >> hex >> f.bytes >> f.packets >> f.entry_id >> f.window_start_ns >> f.active_since_ns) ||
                !parse_key_hex(hex, f.key))
                return bad("bad flow line");
            i.flows.push_back(f);
        }
        st.ifaces.push_back(std::move(i));
    }
    return st;
}

}  // namespace

Result<FlowStateFile> parse_flow_state_text(const std::string& text, const std::string& path) {
    try {
        std::istringstream in(text);
        return parse_flow_state(in, path);
    } catch (const std::exception& e) {
        return Error("read export state (" + std::string(e.what()) + ")", path, EINVAL);
    }
}

Result<FlowStateFile> load_flow_state(const std::string& path) {
    try {
        std::ifstream in(path);
        if (!in) {
            if (errno == ENOENT) return FlowStateFile{};
            return Error("read export state", path, errno);
        }
        return parse_flow_state(in, path);
    } catch (const std::exception& e) {  // e.g. a line too long to hold: still just a bad file
        return Error("read export state (" + std::string(e.what()) + ")", path, EINVAL);
    }
}

FlowStateFile load_flow_state_at_start(const std::string& path) {
    auto st = load_flow_state(path);
    if (st) return std::move(*st);
    // Renamed, so that the next start does not trip over it again and it stays for a look.
    const std::string aside = path + ".bad";
    if (std::rename(path.c_str(), aside.c_str()) == 0)
        spdlog::warn("export: {}; kept as {}; every flow entry in the maps is exported from zero", st.error().message(),
                     aside);
    else
        spdlog::warn("export: {}; every flow entry in the maps is exported from zero", st.error().message());
    return {};
}

}  // namespace pf
