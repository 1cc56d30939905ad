#pragma once
// Secrets kept out of what the agent prints: `config check`, logs, errors, status lines.

#include <string>

namespace pf {

// The URL with the password of its user info and the value of each query parameter
// replaced by "****" ("ftp://u:pw@h/d/?k=v" -> "ftp://u:****@h/d/?k=****"); the scheme,
// user name, host and path stay, so the URL can still be recognised.
std::string mask_url_secrets(const std::string& url);

// Every occurrence of `url` in `text` replaced by mask_url_secrets(url) (an error message
// that quotes the URL it failed on).
std::string mask_url_in(const std::string& text, const std::string& url);

}  // namespace pf
