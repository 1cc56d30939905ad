// Upload of finished export files with libcurl: FTP (temporary name, then RNFR/RNTO) or
// SFTP (temporary name, then rename).

#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <mutex>

#include "peakflow/common/http.hpp"
#include "peakflow/common/redact.hpp"
#include "peakflow/export/flow_export.hpp"

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

std::string hint_for(CURLcode rc, const ExportUploadConfig& c) {
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

    CurlEasy c;
    if (!c) return Error("curl_easy_init", mask_url_secrets(cfg_.url));
    const bool sftp = cfg_.url.rfind("sftp://", 0) == 0;
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
    if (sftp && !cfg_.host_key_sha256.empty())
        curl_easy_setopt(c.get(), CURLOPT_SSH_HOST_PUBLIC_KEY_SHA256, cfg_.host_key_sha256.c_str());
    // With a known_hosts file and no callback, libcurl accepts only a key listed there.
    if (sftp && !cfg_.known_hosts.empty()) curl_easy_setopt(c.get(), CURLOPT_SSH_KNOWNHOSTS, cfg_.known_hosts.c_str());
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
        // The URL may carry user:password@; the error goes to the log and the status line.
        return Error("upload " + name + " to " + mask_url_secrets(cfg_.url) + ": " + mask_url_in(msg, cfg_.url) +
                     hint_for(rc, cfg_));
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
