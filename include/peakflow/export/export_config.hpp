#pragma once
// The `export:` section of the config: flow timeouts, the rolling CSV files, their upload,
// the status reports and IPFIX (flow_export.hpp does the exporting).

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "peakflow/common/config_parser.hpp"
#include "peakflow/common/error.hpp"

namespace pf {

struct ExportFilesConfig {
    bool enabled = true;
    std::string prefix = "flows_";
    std::string directory = "/var/lib/peakflow/export";
    std::chrono::seconds rotate_interval{600};
    uint64_t rotate_size = 100ull * 1000 * 1000;  // uncompressed bytes
    std::string timezone;                         // for file names; empty: the system zone
    bool operator==(const ExportFilesConfig&) const = default;
};

struct ExportUploadConfig {
    // ftp://host[:port]/dir/, ftps:// (TLS from the first byte) or sftp://; empty: no upload
    std::string url;
    std::string user;
    std::string password;
    std::string password_file;
    std::chrono::seconds interval{600};
    // One file's whole transfer (connect, login, data, rename): a server that trickles or
    // stops answering fails the file (it stays spooled) instead of holding the cycle.
    std::chrono::seconds timeout{600};
    bool passive = true;
    uint64_t spool_limit = 0;  // bytes of finished files kept locally; 0: no limit
    // SFTP: the server's host key, as `ssh-keygen -l -E sha256 -f KEY` prints it (the
    // "SHA256:" prefix optional), and/or an OpenSSH known_hosts file it must be listed in.
    // Neither set: uploads are refused, unless trust_first_host_key: the first key the
    // server shows is stored in host_key_store and every other key is refused afterwards.
    std::string host_key_sha256;
    std::string known_hosts;
    bool trust_first_host_key = false;
    // FTP over TLS: tls_required (`tls: required`) sends AUTH TLS on ftp:// and refuses a
    // server without it (login and data encrypted); ca_file: the CAs trusted instead of the
    // system's; pinned_public_key: "sha256//BASE64" of the server's public key (curl's
    // --pinnedpubkey form). ftp:// with a password and without tls: required is a config
    // error unless allow_plaintext_auth.
    bool tls_required = false;
    std::string ca_file;
    std::string pinned_public_key;
    bool allow_plaintext_auth = false;
    // Not in the file: <the history database's directory>/sftp_host_keys (0600), set by
    // prepare_export_upload.
    std::string host_key_store;
    bool operator==(const ExportUploadConfig&) const = default;
};

struct ExportStatusConfig {
    std::string url;  // HTTP POST target; empty: none
    std::chrono::seconds interval{60};
    std::string file;  // local status file (JSON lines); empty: none
    // The file is rotated once it passes file_max_size bytes: FILE -> FILE.1 -> ... ->
    // FILE.<file_backups>, the oldest dropped; 0 backups: it starts anew.
    uint64_t file_max_size = 1024 * 1024;
    uint32_t file_backups = 1;
    std::string instance_id;  // empty: /etc/machine-id
    bool operator==(const ExportStatusConfig&) const = default;
};

struct ExportIpfixConfig {
    std::vector<std::string> collectors;  // "host:port"
    std::chrono::seconds template_refresh{60};
    uint32_t mtu = 1500;
    uint32_t observation_domain = 0;
    bool operator==(const ExportIpfixConfig&) const = default;
};

struct ExportConfig {
    bool enabled = false;  // the `export` key is present
    std::chrono::seconds active_timeout{300};
    std::chrono::seconds idle_timeout{60};
    std::chrono::seconds scan_interval{5};
    ExportFilesConfig files;
    ExportUploadConfig upload;
    ExportStatusConfig status;
    ExportIpfixConfig ipfix;
    // Not in the file: the history database when the collector's flows stream wants the
    // flow pairs (flow_pairs.hpp); pairs_only: the scan runs for them alone (no export:).
    std::string pairs_database;
    bool pairs_only = false;
    bool operator==(const ExportConfig&) const = default;
};

// The export section as the daemon runs it when the collector link sends flow pairs: the
// scan also feeds `database`'s flow_pairs; without an export: section it runs for them
// alone, with timeouts that bring a bucket's records soon after it ends (active 60 s,
// idle 15 s), writing no files.
ExportConfig with_flow_pairs(ExportConfig e, const std::string& database);

// ftp:// with a password (password, password_file or user:pass@ in the URL) and neither
// tls: required nor allow_plaintext_auth: the password would cross the network in clear.
// A config error at load; the uploader refuses as well.
bool ftp_auth_in_clear(const ExportUploadConfig& u);
inline constexpr const char* kFtpPlaintextAuth =
    "ftp:// without tls: required would send the FTP password in clear: set tls: required, use ftps://, or set "
    "allow_plaintext_auth: true";

// Section parser for the `export:` key (config.cpp calls it) and its dump.
Status parse_export_config(const Parser& p, const YAML::Node& n, const std::string& key, ExportConfig& out);
void dump_export_config(YAML::Emitter& out, const ExportConfig& c);

}  // namespace pf
