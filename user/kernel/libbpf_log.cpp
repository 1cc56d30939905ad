// libbpf prints through a callback; we send its lines to spdlog at debug level and keep
// the most recent ones so a verifier rejection can be shown to the user.
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <cstdarg>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>

#include "peakflow/kernel/libbpf_log.hpp"
#include "peakflow/kernel/loader.hpp"

namespace pf {
namespace {

std::mutex g_mu;
std::deque<std::string> g_lines;
constexpr size_t kKeepLines = 400;

int print_fn(enum libbpf_print_level level, const char* fmt, va_list args) {
    char buf[4096];
    int n = std::vsnprintf(buf, sizeof buf, fmt, args);
    if (n < 0) return n;
    std::string text(buf);
    size_t start = 0;
    std::lock_guard lock(g_mu);
    while (start < text.size()) {
        size_t nl = text.find('\n', start);
        std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
        start = nl == std::string::npos ? text.size() : nl + 1;
        if (line.empty()) continue;
        if (level == LIBBPF_DEBUG)
            spdlog::trace("libbpf: {}", line);
        else
            spdlog::debug("libbpf: {}", line);
        g_lines.push_back(std::move(line));
        if (g_lines.size() > kKeepLines) g_lines.pop_front();
    }
    return n;
}

}  // namespace

void install_libbpf_logger() {
    libbpf_set_print(print_fn);
}

void clear_libbpf_log() {
    std::lock_guard lock(g_mu);
    g_lines.clear();
}

std::string libbpf_log_tail(size_t max_lines) {
    std::lock_guard lock(g_mu);
    // Prefer the verifier's own log: the lines before "-- END PROG LOAD LOG --".
    auto end = g_lines.end();
    for (auto it = g_lines.begin(); it != g_lines.end(); ++it)
        if (it->find("-- END PROG LOAD LOG --") != std::string::npos) end = it;
    size_t count = static_cast<size_t>(end - g_lines.begin());
    auto begin = g_lines.begin() + static_cast<long>(count > max_lines ? count - max_lines : 0);
    std::string out;
    for (auto it = begin; it != end; ++it) out += *it + "\n";
    return out;
}

}  // namespace pf
