#include "peakflow/common/privileges.hpp"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace pf {
namespace {

#ifndef CAP_BPF
#define CAP_BPF 39
#endif

bool has_cap(int cap) {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    if (syscall(SYS_capget, &hdr, data) != 0) return false;
    return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

}  // namespace

Status check_attach_privileges() {
    bool bpf = has_cap(CAP_BPF) || has_cap(CAP_SYS_ADMIN);
    bool net = has_cap(CAP_NET_ADMIN);
    if (bpf && net) return Ok{};
    std::string missing = !bpf && !net ? "CAP_BPF and CAP_NET_ADMIN" : !bpf ? "CAP_BPF" : "CAP_NET_ADMIN";
    return Error{"permission denied: attaching needs root or CAP_BPF and CAP_NET_ADMIN (missing " + missing + ")"};
}

Status check_map_read_privileges() {
    if (has_cap(CAP_BPF) || has_cap(CAP_SYS_ADMIN)) return Ok{};
    return Error{"permission denied: reading the BPF maps needs root or CAP_BPF"};
}

}  // namespace pf
