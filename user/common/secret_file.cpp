#include "peakflow/common/secret_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "peakflow/common/fd.hpp"

namespace pf {

Result<std::string> read_secret_text(const std::string& path) {
    // O_NOFOLLOW is not used: /etc/peakflow/x -> /run/secrets/x is a common layout; the
    // checks below are on what the path leads to, made on the open descriptor.
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd.valid()) return Error("cannot read " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return Error("cannot read " + path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return Error(path + " is not a regular file");
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    if (st.st_uid != 0 && st.st_uid != ::geteuid())
        return Error(path + " belongs to user id " + std::to_string(st.st_uid) + ", not to root or the user running " +
                     "peakflow (id " + std::to_string(::geteuid()) + "): chown it");
    if (st.st_mode & (S_IROTH | S_IWOTH | S_IXOTH))
        return Error(path + " is readable by other users (mode " + mode + "): chmod 600 it");
    if (st.st_mode & (S_IWGRP | S_IXGRP))
        return Error(path + " is writable by its group (mode " + mode + "): chmod 600 it");
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) != 0;) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Error("cannot read " + path + ": " + std::strerror(errno));
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > 1024 * 1024) return Error(path + " is larger than 1 MiB: not a secret file");
    }
    return text;
}

Result<std::string> read_secret_line(const std::string& path) {
    auto text = read_secret_text(path);
    if (!text) return text.error();
    std::string line = text->substr(0, text->find('\n'));
    const char* blanks = " \t\r";
    const auto b = line.find_first_not_of(blanks);
    return b == std::string::npos ? std::string() : line.substr(b, line.find_last_not_of(blanks) - b + 1);
}

namespace {

// NAME and NAME_file both given: which one to point at.
Status one_form(const Parser& p, const YAML::Node& n, const std::string& parent, const std::string& name) {
    const std::string file_key = name + "_file";
    if (n[name] && n[file_key])
        return p.error_at(n[file_key].Mark(), parent + "." + file_key,
                          "give " + name + " or " + file_key + ", not both");
    return Ok{};
}

}  // namespace

Status read_secret_child(const Parser& p, const YAML::Node& n, const std::string& parent, const std::string& name,
                         std::string& out, std::string* file) {
    if (auto st = one_form(p, n, parent, name); !st) return st;
    const std::string file_key = name + "_file";
    if (n[name]) return p.read(n[name], parent + "." + name, "a string", out);
    if (!n[file_key]) return Ok{};
    std::string path;
    if (auto st = p.read(n[file_key], parent + "." + file_key, "a file path", path); !st) return st;
    auto v = read_secret_line(path);
    if (!v) return p.error_at(n[file_key].Mark(), parent + "." + file_key, v.error().message());
    out = std::move(*v);
    if (file) *file = path;
    return Ok{};
}

Status read_secret_headers(const Parser& p, const YAML::Node& n, const std::string& parent, const std::string& name,
                           std::vector<std::pair<std::string, std::string>>& out) {
    if (auto st = one_form(p, n, parent, name); !st) return st;
    const std::string key = parent + "." + name;
    if (n[name]) {
        if (auto st = p.read_map(n[name], key, "a mapping of header: value", "a string", out); !st) return st;
        return check_http_headers(p, n[name], key);
    }
    const std::string file_key = name + "_file";
    if (!n[file_key]) return Ok{};
    std::string path;
    if (auto st = p.read(n[file_key], parent + "." + file_key, "a file path", path); !st) return st;
    auto text = read_secret_text(path);
    if (!text) return p.error_at(n[file_key].Mark(), parent + "." + file_key, text.error().message());
    YAML::Node doc;
    try {
        doc = YAML::Load(*text);
    } catch (const YAML::Exception& e) {
        // The message names the place, never the content (it holds the secret).
        return p.error_at(n[file_key].Mark(), parent + "." + file_key,
                          path + ":" + std::to_string(e.mark.line + 1) + ": not a YAML mapping of header: value");
    }
    const Parser fp(path);
    if (auto st = fp.read_map(doc, key, "a mapping of header: value", "a string", out); !st) return st;
    return check_http_headers(fp, doc, key);
}

}  // namespace pf
