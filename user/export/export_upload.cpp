// Upload of finished export files with libcurl: FTP (temporary name, then RNFR/RNTO) or
// SFTP (temporary name, then rename).

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>

#include "peakflow/common/http.hpp"
#include "peakflow/common/redact.hpp"
#include "peakflow/common/text_file.hpp"
#include "peakflow/export/flow_export.hpp"
#include "peakflow/push/sinks.hpp"

namespace pf {

namespace {

void curl_init_once() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct FileDel {
    void operator()(FILE* f) const { std::fclose(f); }
};

// The path part of sftp://host[:port]/path/ (what SFTP quote commands need).
std::string url_path(const std::string& url) {
    auto scheme = url.find("://");
    auto slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    return slash == std::string::npos ? "/" : url.substr(slash);
}

// HOST:PORT of sftp://[user[:pass]@]host[:port]/path (the port 22 when the URL has none).
std::string ssh_host_port(const std::string& url) {
    auto scheme = url.find("://");
    size_t from = scheme == std::string::npos ? 0 : scheme + 3;
    std::string auth = url.substr(from, url.find('/', from) - from);
    if (auto at = auth.rfind('@'); at != std::string::npos) auth.erase(0, at + 1);
    const auto bracket = auth.rfind(']');
    const auto colon = auth.rfind(':');
    if (colon == std::string::npos || (bracket != std::string::npos && colon < bracket)) auth += ":22";
    return auth;
}

// What ssh-keygen -l -E sha256 prints for a key blob: SHA256: and base64 without padding.
std::string ssh_fingerprint(const char* key, size_t len) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(key, len, md, &n, EVP_sha256(), nullptr);
    std::string b = base64(std::string(reinterpret_cast<const char*>(md), n));
    while (!b.empty() && b.back() == '=') b.pop_back();
    return "SHA256:" + b;
}

// The SFTP host key trusted on first use (upload.trust_first_host_key): the store holds one
// "HOST:PORT SHA256:..." line per server, 0600, replaced whole (write, fsync, rename).
struct FirstUseKey {
    std::string store, host;
    std::string seen, trusted;  // fingerprints; trusted empty: none stored yet
    std::string error;          // the store could not be written
};

std::string trusted_key(const std::string& store, const std::string& host) {
    std::istringstream in(read_text_file(store));
    std::string h, fp;
    while (in >> h >> fp)
        if (h == host) return fp;
    return "";
}

std::string add_trusted_key(const std::string& store, const std::string& host, const std::string& fp) {
    const std::string tmp = store + ".tmp";
    const std::string text = read_text_file(store) + host + " " + fp + "\n";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return "cannot write " + tmp + ": " + std::strerror(errno);
    bool ok = ::fchmod(fd, 0600) == 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
              ::fsync(fd) == 0;
    const int err = errno;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), store.c_str()) != 0) {
        const std::string e = "cannot write " + store + ": " + std::strerror(ok ? errno : err);
        ::unlink(tmp.c_str());
        return e;
    }
    return "";
}

int first_use_check(void* p, int /*keytype*/, const char* key, size_t len) {
    auto& f = *static_cast<FirstUseKey*>(p);
    f.seen = ssh_fingerprint(key, len);
    f.trusted = trusted_key(f.store, f.host);
    if (f.trusted.empty()) {
        f.error = add_trusted_key(f.store, f.host, f.seen);
        if (!f.error.empty()) return CURLKHMATCH_MISMATCH;
        spdlog::warn("export: trusting the SFTP server {}'s host key {} from now on (first use; stored in {})", f.host,
                     f.seen, f.store);
        return CURLKHMATCH_OK;
    }
    return f.trusted == f.seen ? CURLKHMATCH_OK : CURLKHMATCH_MISMATCH;
}

std::string hint_for(CURLcode rc, bool sftp, const ExportUploadConfig& c) {
    if (!sftp) switch (rc) {
            case CURLE_PEER_FAILED_VERIFICATION:
                return " (the FTP server's TLS certificate is not trusted: check export.upload.ca_file)";
            case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
                return " (the FTP server's public key does not match export.upload.pinned_public_key)";
            case CURLE_USE_SSL_FAILED: return " (the FTP server does not offer AUTH TLS: tls: required refuses it)";
            default: break;
        }
    switch (rc) {
        case CURLE_OPERATION_TIMEDOUT:
            return " (timed out: export.upload.timeout is " + std::to_string(c.timeout.count()) +
                   " s; the file stays spooled and is retried)";
        case CURLE_LOGIN_DENIED: return " (login denied: check export.upload.user and the password)";
        case CURLE_COULDNT_CONNECT: return " (server not reachable; files stay spooled and are retried)";
        case CURLE_REMOTE_ACCESS_DENIED: return " (the server refused access to the directory)";
        case CURLE_QUOTE_ERROR: return " (the rename to the final name failed on the server)";
        case CURLE_PEER_FAILED_VERIFICATION:
            return " (the server's host key does not match export.upload.host_key_sha256 or known_hosts)";
        default: return "";
    }
}

}  // namespace

Status Uploader::upload(const std::string& local_path, const std::string& name) const {
    curl_init_once();
    std::unique_ptr<FILE, FileDel> f(std::fopen(local_path.c_str(), "rb"));
    if (!f) return Error("open spooled file", local_path, errno);
    std::fseek(f.get(), 0, SEEK_END);
    long size = std::ftell(f.get());
    std::fseek(f.get(), 0, SEEK_SET);

    const bool sftp = cfg_.url.rfind("sftp://", 0) == 0;
    const bool first_use = sftp && cfg_.host_key_sha256.empty() && cfg_.known_hosts.empty();
    if (first_use && !cfg_.trust_first_host_key)
        return Error("upload " + name + " to " + mask_url_secrets(cfg_.url) + ": " + kSftpHostKeyUnset);
    if (ftp_auth_in_clear(cfg_))
        return Error("upload " + name + " to " + mask_url_secrets(cfg_.url) + ": refused: " + kFtpPlaintextAuth);
    CurlEasy c;
    if (!c) return Error("curl_easy_init", mask_url_secrets(cfg_.url));
    const std::string tmp = name + ".tmp";
    const std::string url = cfg_.url + tmp;
    char errbuf[CURL_ERROR_SIZE] = {0};
    CurlSlist post;
    if (sftp) {
        std::string dir = url_path(cfg_.url);
        post.append("rename \"" + dir + tmp + "\" \"" + dir + name + "\"");
    } else {
        post.append("RNFR " + tmp);
        post.append("RNTO " + name);
    }
    curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(c.get(), CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c.get(), CURLOPT_READDATA, f.get());
    curl_easy_setopt(c.get(), CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
    curl_easy_setopt(c.get(), CURLOPT_USERNAME, cfg_.user.c_str());
    curl_easy_setopt(c.get(), CURLOPT_PASSWORD, cfg_.password.c_str());
    curl_easy_setopt(c.get(), CURLOPT_FTP_CREATE_MISSING_DIRS, static_cast<long>(CURLFTP_CREATE_DIR_RETRY));
    curl_easy_setopt(c.get(), CURLOPT_POSTQUOTE, post.get());
    curl_easy_setopt(c.get(), CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT, 15L);
    // A stalled server fails after a minute; one that trickles, after the whole timeout.
    curl_easy_setopt(c.get(), CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c.get(), CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c.get(), CURLOPT_TIMEOUT, static_cast<long>(cfg_.timeout.count()));
    if (!sftp && !cfg_.passive) curl_easy_setopt(c.get(), CURLOPT_FTPPORT, "-");
    // FTP over TLS: control and data connections (ftps:// is TLS from the start anyway).
    if (!sftp && cfg_.tls_required) curl_easy_setopt(c.get(), CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
    if (!sftp && !cfg_.ca_file.empty()) curl_easy_setopt(c.get(), CURLOPT_CAINFO, cfg_.ca_file.c_str());
    if (!sftp && !cfg_.pinned_public_key.empty())
        curl_easy_setopt(c.get(), CURLOPT_PINNEDPUBLICKEY, cfg_.pinned_public_key.c_str());
    if (sftp && !cfg_.host_key_sha256.empty())
        curl_easy_setopt(c.get(), CURLOPT_SSH_HOST_PUBLIC_KEY_SHA256, cfg_.host_key_sha256.c_str());
    // With a known_hosts file and no callback, libcurl accepts only a key listed there.
    if (sftp && !cfg_.known_hosts.empty()) curl_easy_setopt(c.get(), CURLOPT_SSH_KNOWNHOSTS, cfg_.known_hosts.c_str());
    // Neither: the key this server showed first, or the first one now (before the password).
    FirstUseKey fk{cfg_.host_key_store, ssh_host_port(cfg_.url), "", "", ""};
    if (first_use) {
        curl_easy_setopt(c.get(), CURLOPT_SSH_HOSTKEYFUNCTION, first_use_check);
        curl_easy_setopt(c.get(), CURLOPT_SSH_HOSTKEYDATA, &fk);
    }
    if (abort_) {
        curl_easy_setopt(c.get(), CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c.get(), CURLOPT_XFERINFODATA, abort_);
        curl_easy_setopt(
            c.get(), CURLOPT_XFERINFOFUNCTION, +[](void* p, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> int {
                return static_cast<const std::atomic<bool>*>(p)->load() ? 1 : 0;
            });
    }
    CURLcode rc = curl_easy_perform(c.get());
    if (rc != CURLE_OK) {
        std::string msg = errbuf[0] ? errbuf : curl_easy_strerror(rc);
        while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r')) msg.pop_back();
        if (first_use && rc == CURLE_PEER_FAILED_VERIFICATION) {
            const std::string what =
                !fk.error.empty() ? "the SFTP server's host key " + fk.seen + " cannot be stored: " + fk.error
                                  : "the SFTP server's host key changed: it is " + fk.seen + ", " + fk.trusted +
                                        " was trusted on first use (if the server's key was replaced, delete the " +
                                        fk.host + " line from " + fk.store + ")";
            return Error("upload " + name + " to " + mask_url_secrets(cfg_.url) + ": " + what);
        }
        // The URL may carry user:password@; the error goes to the log and the status line.
        return Error("upload " + name + " to " + mask_url_secrets(cfg_.url) + ": " + mask_url_in(msg, cfg_.url) +
                     hint_for(rc, sftp, cfg_));
    }
    return Ok{};
}

Uploader::CycleResult Uploader::run_cycle(const std::string& dir, const std::string& prefix) const {
    CycleResult r;
    for (const auto& f : list_spool(dir, prefix)) {
        if (abort_ && abort_->load()) break;
        const std::string path = dir + "/" + f.name;
        auto st = upload(path, f.name);
        if (!st) {
            r.failed++;
            r.last_error = st.error().message();
            spdlog::error("export: {}", r.last_error);
            break;  // later files wait: they go up in name order once this one has
        }
        if (unlink(path.c_str()) != 0) spdlog::warn("export: uploaded {} but could not delete it", path);
        spdlog::info("export: uploaded {} ({} bytes) and deleted the local copy", f.name, f.size);
        r.uploaded++;
        r.bytes += f.size;
    }
    return r;
}

}  // namespace pf
