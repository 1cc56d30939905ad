#pragma once
// Secrets kept out of the config file: every secret key NAME also has a NAME_file form
// naming a file that holds it. One check for them all: the file must be owned by root or
// by the user running the program, and neither readable by others nor writable by its
// group (0600, 0640, 0400 or 0440), so that a secret is never readable by other local users.

#include <yaml-cpp/yaml.h>

#include <string>
#include <utility>
#include <vector>

#include "peakflow/common/config_parser.hpp"
#include "peakflow/common/error.hpp"

namespace pf {

// The file's text after the checks above; the error says what is wrong and what to do
// ("/etc/peakflow/token is readable by other users (mode 0644): chmod 600 it"). Never
// quotes the content.
Result<std::string> read_secret_text(const std::string& path);

// Its first line without surrounding blanks (the usual form: `echo TOKEN > FILE`).
Result<std::string> read_secret_line(const std::string& path);

// NAME or NAME_file under `n` (exactly one of them, or neither: out unchanged). With
// NAME_file the file's first line becomes `out` and its path `file` (when given). Errors
// name file:line:col and the key ("key 'push.sinks[0].token_file': ...").
Status read_secret_child(const Parser& p, const YAML::Node& n, const std::string& parent, const std::string& name,
                         std::string& out, std::string* file = nullptr);

// A mapping of HTTP headers given inline (NAME: {Header: value}) or as NAME_file, a file
// holding the same mapping in YAML (errors then name that file's line). The values are
// checked with check_http_headers either way.
Status read_secret_headers(const Parser& p, const YAML::Node& n, const std::string& parent, const std::string& name,
                           std::vector<std::pair<std::string, std::string>>& out);

}  // namespace pf
