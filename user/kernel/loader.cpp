#include "peakflow/kernel/loader.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "peakflow.skel.h"
#include "peakflow/common/scope_guard.hpp"
#include "peakflow/kernel/ifaces.hpp"
#include "peakflow/kernel/libbpf_log.hpp"

namespace fs = std::filesystem;

namespace pf {

void SkeletonDeleter::operator()(peakflow_bpf* s) const {
    peakflow_bpf__destroy(s);
}

std::string prog_name_by_id(uint32_t id) {
    if (id == 0) return {};
    Fd fd(bpf_prog_get_fd_by_id(id));
    if (!fd.valid()) return {};
    bpf_prog_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) return {};
    return info.name;
}

Status ensure_bpffs(const Paths& paths) {
    struct statfs st {};
    if (statfs(paths.bpffs.c_str(), &st) == 0 && st.f_type == BPF_FS_MAGIC) return Ok{};
    // A bpffs mounted inside a private mount namespace (ip netns exec, some containers)
    // dies with it, and the pins with it: counters would silently restart. Only mount one
    // where it outlives us, in the init mount namespace.
    struct stat self {
    }, init{};
    if (stat("/proc/self/ns/mnt", &self) == 0 && stat("/proc/1/ns/mnt", &init) == 0 && self.st_ino != init.st_ino)
        return Error("no bpffs at " + paths.bpffs + " in this mount namespace", "", 0,
                     "pins made here would vanish with it; for an interface in a network namespace run "
                     "'nsenter --net=/run/netns/NAME peakflow-bpf ...' instead of 'ip netns exec'");
    std::error_code ec;
    fs::create_directories(paths.bpffs, ec);
    if (mount("bpf", paths.bpffs.c_str(), "bpf", 0, "mode=0700") != 0)
        return Error("mount bpffs at", paths.bpffs, errno);
    spdlog::info("mounted a bpffs at {}", paths.bpffs);
    return Ok{};
}

namespace {

uint32_t pow2_at_least(uint64_t n) {
    uint32_t p = 1;
    while (p < n && p < (1u << 31)) p <<= 1;
    return p;
}

// The sizes of a new set of maps. MAC tables have four slots per MAC (at most a quarter
// full, so a MAC always finds a slot within its probes) and take `capacity` MACs per CPU.
// Flow tables are per CPU: twice the capacity shared out over the CPUs, but never less
// than the capacity itself (up to 4096), so one CPU that carries all the traffic (one
// queue, one flow-heavy core) still holds that many.
uint32_t flow_slots_per_cpu(uint32_t capacity, uint32_t ncpus) {
    uint64_t share = (uint64_t{capacity} * 2 + ncpus - 1) / ncpus;
    return pow2_at_least(std::max<uint64_t>(share, std::min<uint64_t>(capacity, 4096)));
}

pf_conf new_conf(const LoadOptions& o) {
    pf_conf c{};
    c.ncpus = static_cast<uint32_t>(std::max(libbpf_num_possible_cpus(), 1));
    c.mac_limit = o.mac_capacity;
    c.mac_slots = pow2_at_least(uint64_t{o.mac_capacity} * 4);
    c.flow_slots = flow_slots_per_cpu(o.flow_capacity, c.ncpus);
    if (getrandom(&c.seed, sizeof c.seed, 0) != sizeof c.seed) c.seed = 0x5eed5eed5eed5eedull ^ uint64_t(getpid());
    return c;
}

// The configuration of maps pinned by an earlier attach; nullopt if there are none. Every
// pin is checked first: the lookup copies a value of the pin's size into `c`.
Result<std::optional<pf_conf>> pinned_conf(const std::string& pin_dir) {
    if (pin_dir.empty()) return std::optional<pf_conf>();
    Fd fd(bpf_obj_get((pin_dir + "/" PF_MAP_CONF).c_str()));
    if (!fd.valid()) return std::optional<pf_conf>();
    if (auto st = check_pinned_maps(pin_dir); !st) return st.error();
    pf_conf c{};
    uint32_t key = 0;
    if (bpf_map_lookup_elem(fd.get(), &key, &c) != 0) return std::optional<pf_conf>();
    if (c.flow_slots != 0)
        if (auto st = check_pinned_maps(pin_dir, &c); !st) return st.error();
    return std::optional<pf_conf>(c);
}

}  // namespace

MapFds map_fds(const peakflow_bpf& skel) {
    const auto& m = skel.maps;
    return MapFds{bpf_map__fd(m.pf_iface),    bpf_map__fd(m.pf_mac),  bpf_map__fd(m.pf_flow),
                  bpf_map__fd(m.pf_flow_ack), bpf_map__fd(m.pf_conf), bpf_map__fd(m.pf_events)};
}

Result<SkeletonPtr> open_and_load(const LoadOptions& o) {
    if (o.mac_capacity == 0 || o.flow_capacity == 0)
        return Error{"invalid map capacity 0", "", 0, "mac and flow capacities must be at least 1"};
    LIBBPF_OPTS(bpf_object_open_opts, open_opts);
    if (!o.pin_dir.empty()) open_opts.pin_root_path = o.pin_dir.c_str();
    SkeletonPtr skel(peakflow_bpf__open_opts(&open_opts));
    if (!skel) return Error{"open the BPF object", "", errno};

    // Maps that exist keep the sizes and hash seed they were made with: counting goes on
    // in them (detach to change the capacities).
    auto pinned_or_error = pinned_conf(o.pin_dir);
    if (!pinned_or_error) return pinned_or_error.error();
    const std::optional<pf_conf> pinned = *pinned_or_error;
    const pf_conf c = pinned ? *pinned : new_conf(o);
    if (pinned && c.flow_slots == 0)
        return Error{"the maps pinned in " + o.pin_dir + " were never configured", "", 0,
                     "run 'peakflow-bpf detach' and attach again"};
    if (pinned && c.mac_limit != o.mac_capacity)
        spdlog::warn("{} was made for {} MACs; keeping that instead of {} (detach to change it)", o.pin_dir,
                     c.mac_limit, o.mac_capacity);
    if (pinned && c.flow_slots != flow_slots_per_cpu(o.flow_capacity, c.ncpus))
        spdlog::warn("{} was made with {} flow slots per CPU; keeping that (detach to change the flow capacity)",
                     o.pin_dir, c.flow_slots);
    skel->rodata->pf_flows_enabled = o.flows ? 1 : 0;
    skel->rodata->pf_seed = c.seed;
    skel->rodata->pf_mac_mask = c.mac_slots - 1;
    skel->rodata->pf_mac_limit = c.mac_limit;
    skel->rodata->pf_flow_mask = c.flow_slots - 1;
    skel->rodata->pf_flow_slots = c.flow_slots;
    bpf_map__set_max_entries(skel->maps.pf_mac, c.mac_slots);
    bpf_map__set_max_entries(skel->maps.pf_flow, c.ncpus * c.flow_slots);
    bpf_map__set_max_entries(skel->maps.pf_flow_ack, c.ncpus * c.flow_slots);
    if (o.pin_dir.empty()) {
        bpf_map* m;
        bpf_object__for_each_map(m, skel->obj) bpf_map__set_pin_path(m, nullptr);
    }

    clear_libbpf_log();
    if (int err = peakflow_bpf__load(skel.get()); err != 0) {
        std::string tail = libbpf_log_tail();
        Error e{"load the BPF programs", "", -err};
        if (tail.find("PROG LOAD LOG") != std::string::npos || err == -EACCES || err == -EINVAL)
            e.hint = "the kernel verifier rejected the program; end of its log:\n" + tail;
        else if (tail.find("reuse pinned map") != std::string::npos)
            e.hint = "maps pinned in " + o.pin_dir + " do not match this build; run 'peakflow-bpf detach' first";
        if (err == -EPERM) e.hint = "needs root or CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON";
        return e;
    }
    if (!pinned) {
        uint32_t key = 0;
        if (bpf_map_update_elem(bpf_map__fd(skel->maps.pf_conf), &key, &c, BPF_ANY) != 0)
            return Error{"write map", PF_MAP_CONF, errno};
    }
    return skel;
}

namespace {

struct XdpQuery {
    uint32_t drv_id = 0, skb_id = 0, hw_id = 0;
};

XdpQuery query_xdp(int ifindex) {
    LIBBPF_OPTS(bpf_xdp_query_opts, q);
    XdpQuery r;
    if (bpf_xdp_query(ifindex, 0, &q) == 0) {
        r.drv_id = q.drv_prog_id;
        r.skb_id = q.skb_prog_id;
        r.hw_id = q.hw_prog_id;
    }
    return r;
}

bool is_ours_xdp(uint32_t id) {
    return id != 0 && prog_name_by_id(id) == PF_PROG_XDP;
}

bpf_tc_hook tc_hook(int ifindex, bpf_tc_attach_point point) {
    bpf_tc_hook h{};
    h.sz = sizeof h;
    h.ifindex = ifindex;
    h.attach_point = point;
    return h;
}

// Program id of the filter at our handle/priority on that hook; 0 if none.
uint32_t query_tc_filter(int ifindex, bpf_tc_attach_point point) {
    bpf_tc_hook h = tc_hook(ifindex, point);
    LIBBPF_OPTS(bpf_tc_opts, o, .handle = PF_TC_HANDLE, .priority = PF_TC_PRIORITY);
    if (bpf_tc_query(&h, &o) != 0) return 0;
    return o.prog_id;
}

Status tc_detach_ours(int ifindex, bpf_tc_attach_point point, const char* expect_name) {
    uint32_t id = query_tc_filter(ifindex, point);
    if (id == 0) return Ok{};
    if (prog_name_by_id(id) != expect_name)
        return Error{"a foreign TC filter sits at our handle/priority on ifindex " + std::to_string(ifindex), "", 0,
                     "left in place"};
    bpf_tc_hook h = tc_hook(ifindex, point);
    LIBBPF_OPTS(bpf_tc_opts, o, .handle = PF_TC_HANDLE, .priority = PF_TC_PRIORITY);
    if (int err = bpf_tc_detach(&h, &o); err != 0 && err != -ENOENT)
        return Error{"remove TC filter from ifindex", std::to_string(ifindex), -err};
    return Ok{};
}

Status tc_attach(int ifindex, bpf_tc_attach_point point, int prog_fd, const char* expect_name) {
    if (uint32_t id = query_tc_filter(ifindex, point); id != 0 && prog_name_by_id(id) != expect_name)
        return Error{"another TC filter uses handle/priority " + std::to_string(PF_TC_HANDLE) + "/" +
                         std::to_string(PF_TC_PRIORITY),
                     "", 0, "peakflow does not replace it"};
    bpf_tc_hook h = tc_hook(ifindex, point);
    LIBBPF_OPTS(bpf_tc_opts, o, .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE, .handle = PF_TC_HANDLE,
                .priority = PF_TC_PRIORITY);
    if (int err = bpf_tc_attach(&h, &o); err != 0)
        return Error{point == BPF_TC_EGRESS ? "attach TC egress filter" : "attach TC ingress filter", "", -err};
    return Ok{};
}

std::string qdisc_marker(const Paths& p, const std::string& ifname) {
    return p.run_dir + "/" + ifname + ".clsact";
}
std::string pid_file(const Paths& p, const std::string& ifname) {
    return p.run_dir + "/" + ifname + ".pid";
}

std::string read_pid(const Paths& p, const std::string& ifname) {
    std::ifstream in(pid_file(p, ifname));
    std::string pid;
    in >> pid;
    return pid;
}

// Exclusive lock on the interface's pin directory: one loader per interface at a time.
Result<Fd> lock_pin_dir(const std::string& dir, const std::string& ifname, const Paths& p, const char* action) {
    Fd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return Error{"open pin directory", dir, errno};
    if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK) return Error{"lock pin directory", dir, errno};
        std::string pid = read_pid(p, ifname);
        std::string who = "a running peakflow-bpf" + (pid.empty() ? std::string() : " (pid " + pid + ")");
        if (std::string(action) == "attach")
            return Error{ifname + " is already attached by " + who, "", 0,
                         "stop it, or run 'peakflow-bpf detach " + ifname + "' once it has stopped"};
        return Error{"cannot detach " + ifname + ": it is in use by " + who, "", 0,
                     "stop it first, or stop it with --detach-on-exit"};
    }
    return fd;
}

bool has_pinned_maps(const std::string& dir) {
    return fs::exists(dir + "/" PF_MAP_IFACE) || fs::exists(dir + "/" PF_MAP_MAC);
}

// The id of the program on the interface's XDP hook, in whichever mode it runs; 0 if none.
uint32_t current_xdp_id(const XdpQuery& xq) {
    return xq.drv_id ? xq.drv_id : xq.skb_id ? xq.skb_id : xq.hw_id;
}

// Creates the interface's pin directory (and the run directory). True if it was there.
Result<bool> make_pin_dir(const std::string& dir, const Paths& paths) {
    std::error_code ec;
    bool existed = fs::exists(dir);
    fs::create_directories(dir, ec);
    if (ec) return Error{"create pin directory", dir, ec.value()};
    fs::create_directories(paths.run_dir, ec);
    return existed;
}

void remove_pin_dir(const std::string& dir, const Paths& paths) {
    rmdir(dir.c_str());
    rmdir(paths.pin_root().c_str());  // only if no other interface is pinned
}

void remove_pins(const std::string& dir, const Paths& paths) {
    for (const char* m : kPinnedMaps) unlink((dir + "/" + m).c_str());
    remove_pin_dir(dir, paths);
}

// clsact: created if absent, with a marker that says so (across restarts, for detach).
// True if this call created it.
Result<bool> create_clsact(int ifindex, const Paths& paths, const std::string& ifname) {
    bpf_tc_hook hook = tc_hook(ifindex, BPF_TC_EGRESS);
    int err = bpf_tc_hook_create(&hook);
    if (err == -EEXIST) return false;
    if (err != 0) return Error{"create clsact qdisc", "", -err};
    std::ofstream(qdisc_marker(paths, ifname)) << "created by peakflow-bpf\n";
    return true;
}

void remove_clsact(int ifindex, const Paths& paths, const std::string& ifname) {
    bpf_tc_hook h = tc_hook(ifindex, static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
    bpf_tc_hook_destroy(&h);
    unlink(qdisc_marker(paths, ifname).c_str());
}

// Our filter at our handle/priority. True if there was no filter before: our own filter
// from an earlier run is replaced in place, which is nothing to undo.
Result<bool> attach_tc_filter(int ifindex, bpf_tc_attach_point point, int prog_fd, const char* name) {
    bool had = query_tc_filter(ifindex, point) != 0;
    if (auto st = tc_attach(ifindex, point, prog_fd, name); !st) return st.error();
    return !had;
}

// Restart: swap our program in place, in the mode it runs in now unless told otherwise.
Result<XdpMode> replace_our_xdp(int ifindex, const XdpQuery& xq, XdpMode want, int xdp_fd) {
    bool want_native = want == XdpMode::Native || want == XdpMode::Auto;
    bool old_native = xq.drv_id != 0;
    bool new_native = want == XdpMode::Auto ? old_native : want_native;
    Fd old_fd(bpf_prog_get_fd_by_id(current_xdp_id(xq)));
    uint32_t old_flags = old_native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
    int err;
    if (new_native == old_native) {
        LIBBPF_OPTS(bpf_xdp_attach_opts, ao, .old_prog_fd = old_fd.get());
        err = bpf_xdp_attach(ifindex, xdp_fd, old_flags | XDP_FLAGS_REPLACE, &ao);
    } else {
        bpf_xdp_detach(ifindex, old_flags, nullptr);
        err = bpf_xdp_attach(ifindex, xdp_fd,
                             XDP_FLAGS_UPDATE_IF_NOEXIST | (new_native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE),
                             nullptr);
    }
    if (err) return Error{"replace our XDP program", "", -err};
    return new_native ? XdpMode::Native : XdpMode::Generic;
}

// No XDP program yet: native where asked and the driver has it, generic otherwise (auto
// falls back to it, native does not).
Result<XdpMode> attach_new_xdp(int ifindex, const std::string& ifname, XdpMode want, int xdp_fd) {
    int err = -EOPNOTSUPP;
    if (want == XdpMode::Native || want == XdpMode::Auto)
        err = bpf_xdp_attach(ifindex, xdp_fd, XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_DRV_MODE, nullptr);
    if (err == 0) return XdpMode::Native;
    if (want == XdpMode::Native)
        return Error{"attach XDP in native mode", "", -err,
                     "the driver may not support native XDP; try --xdp-mode generic"};
    if (err == -EBUSY || err == -EEXIST) return Error{"attach XDP: another program was attached meanwhile", "", -err};
    if (want == XdpMode::Auto)
        spdlog::warn("{}: native XDP not available ({}); using generic XDP, which costs more per packet", ifname,
                     std::strerror(-err));
    err = bpf_xdp_attach(ifindex, xdp_fd, XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_SKB_MODE, nullptr);
    if (err) return Error{"attach XDP in generic mode", "", -err};
    return XdpMode::Generic;
}

// How ingress is counted once attached. fresh: nothing of ours was there before, so undoing
// means taking it away.
struct Ingress {
    XdpMode mode = XdpMode::Off;
    bool fresh = false;
};

// --xdp-mode off: the TC ingress filter counts; our XDP program from an earlier run goes.
Result<Ingress> count_ingress_with_tc(int ifindex, const peakflow_bpf& skel, const XdpQuery& xq, bool ours_xdp) {
    auto fresh =
        attach_tc_filter(ifindex, BPF_TC_INGRESS, bpf_program__fd(skel.progs.pf_tc_ingress), PF_PROG_TC_INGRESS);
    if (!fresh) return fresh.error();
    if (ours_xdp) bpf_xdp_detach(ifindex, xq.drv_id ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE, nullptr);
    return Ingress{XdpMode::Off, *fresh};
}

Result<Ingress> count_ingress_with_xdp(int ifindex, const std::string& ifname, const peakflow_bpf& skel,
                                       const XdpQuery& xq, bool ours_xdp, XdpMode want) {
    int xdp_fd = bpf_program__fd(skel.progs.pf_xdp_ingress);
    auto mode = ours_xdp ? replace_our_xdp(ifindex, xq, want, xdp_fd) : attach_new_xdp(ifindex, ifname, want, xdp_fd);
    if (!mode) return mode.error();
    // A TC ingress filter from an earlier --xdp-mode off run would count twice.
    (void)tc_detach_ours(ifindex, BPF_TC_INGRESS, PF_PROG_TC_INGRESS);
    return Ingress{*mode, !ours_xdp};
}

void detach_ingress(int ifindex, XdpMode mode) {
    if (mode == XdpMode::Off)
        (void)tc_detach_ours(ifindex, BPF_TC_INGRESS, PF_PROG_TC_INGRESS);
    else
        bpf_xdp_detach(ifindex, 0, nullptr);
}

}  // namespace

Result<AttachedInterface> attach_interface(const std::string& ifname, const AttachOptions& opts, const Paths& paths) {
    int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
    if (ifindex == 0) return unknown_interface(ifname);

    // Refuse to displace someone else's XDP program, before anything is changed.
    const XdpQuery xq = query_xdp(ifindex);
    const uint32_t current_xdp = current_xdp_id(xq);
    const bool ours_attached = is_ours_xdp(current_xdp);
    if (current_xdp && !ours_attached && opts.xdp_mode != XdpMode::Off) {
        return Error{"another XDP program (id " + std::to_string(current_xdp) + ", '" + prog_name_by_id(current_xdp) +
                         "') is attached to " + ifname,
                     "", 0, "peakflow does not replace it; remove it, or use --xdp-mode off to count ingress with TC"};
    }

    if (auto st = ensure_bpffs(paths); !st) return st.error();
    // Whatever fails below undoes what this call did, so nothing is left half-attached: each
    // change arms a guard, the guards undo in reverse order unless dismissed at the end.
    const std::string dir = paths.pin_dir(ifname);
    auto dir_existed = make_pin_dir(dir, paths);
    if (!dir_existed) return dir_existed.error();
    ScopeGuard undo_dir([&] { remove_pin_dir(dir, paths); }, !*dir_existed);
    auto lock = lock_pin_dir(dir, ifname, paths, "attach");
    if (!lock) return lock.error();
    undo_dir.dismiss();  // from here on undo_pins takes the directory away with the pins

    AttachedInterface ai;
    ai.ifname = ifname;
    ai.ifindex = ifindex;
    ai.reused_pins = *dir_existed && has_pinned_maps(dir);
    ScopeGuard undo_pins([&] { remove_pins(dir, paths); }, !ai.reused_pins);
    LoadOptions lo = opts.load;
    lo.pin_dir = dir;
    auto skel = open_and_load(lo);
    if (!skel) {
        Error e = skel.error();
        if (e.object.rfind(dir + "/", 0) != 0) e.object = "for " + ifname;  // a pin's path names it already
        return e;
    }
    ai.skel = std::move(skel.value());

    auto fail = [&](Error e) {
        if (e.object.empty()) e.object = "on " + ifname;
        return e;
    };
    auto qdisc_created = create_clsact(ifindex, paths, ifname);
    if (!qdisc_created) return fail(qdisc_created.error());
    ScopeGuard undo_qdisc([&] { remove_clsact(ifindex, paths, ifname); }, *qdisc_created);

    auto egress_new =
        attach_tc_filter(ifindex, BPF_TC_EGRESS, bpf_program__fd(ai.skel->progs.pf_tc_egress), PF_PROG_TC_EGRESS);
    if (!egress_new) return fail(egress_new.error());
    ScopeGuard undo_egress([&] { (void)tc_detach_ours(ifindex, BPF_TC_EGRESS, PF_PROG_TC_EGRESS); }, *egress_new);

    auto ingress = opts.xdp_mode == XdpMode::Off
                       ? count_ingress_with_tc(ifindex, *ai.skel, xq, ours_attached)
                       : count_ingress_with_xdp(ifindex, ifname, *ai.skel, xq, ours_attached, opts.xdp_mode);
    if (!ingress) return fail(ingress.error());
    ScopeGuard undo_ingress([&, mode = ingress->mode] { detach_ingress(ifindex, mode); }, ingress->fresh);
    ai.xdp_mode = ingress->mode;

    std::ofstream(pid_file(paths, ifname)) << getpid() << "\n";
    ai.lock = std::move(lock.value());
    undo_ingress.dismiss();
    undo_egress.dismiss();
    undo_qdisc.dismiss();
    undo_pins.dismiss();
    spdlog::info("{}: attached (ifindex {}, XDP {}, maps {} in {})", ifname, ifindex, to_string(ai.xdp_mode),
                 ai.reused_pins ? "reused" : "created", dir);
    return ai;
}

Status detach_interface(const std::string& ifname, const Paths& paths) {
    std::string dir = paths.pin_dir(ifname);
    int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
    bool pinned = fs::exists(dir);
    if (ifindex == 0 && !pinned) return Error{"unknown interface '" + ifname + "'", "", 0, "nothing to detach"};

    Fd lock;
    if (pinned) {
        auto l = lock_pin_dir(dir, ifname, paths, "detach");
        if (!l) return l.error();
        lock = std::move(l.value());
    }

    bool found_anything = pinned;
    if (ifindex != 0) {
        XdpQuery xq = query_xdp(ifindex);
        if (is_ours_xdp(xq.drv_id) || is_ours_xdp(xq.skb_id)) {
            uint32_t id = is_ours_xdp(xq.drv_id) ? xq.drv_id : xq.skb_id;
            Fd old_fd(bpf_prog_get_fd_by_id(id));
            LIBBPF_OPTS(bpf_xdp_attach_opts, ao, .old_prog_fd = old_fd.get());
            uint32_t mode = id == xq.drv_id ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
            if (int err = bpf_xdp_detach(ifindex, mode | XDP_FLAGS_REPLACE, &ao); err != 0)
                return Error{"remove XDP program from", ifname, -err};
            found_anything = true;
        }
        for (auto [point, name] : {std::pair{BPF_TC_EGRESS, PF_PROG_TC_EGRESS}, {BPF_TC_INGRESS, PF_PROG_TC_INGRESS}}) {
            if (query_tc_filter(ifindex, point) == 0) continue;
            if (auto st = tc_detach_ours(ifindex, point, name); !st) return st.error();
            found_anything = true;
        }
        if (fs::exists(qdisc_marker(paths, ifname))) {
            bpf_tc_hook h = tc_hook(ifindex, static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
            if (int err = bpf_tc_hook_destroy(&h); err != 0 && err != -ENOENT && err != -EINVAL)
                return Error{"remove clsact qdisc from", ifname, -err};
        }
    }
    unlink(qdisc_marker(paths, ifname).c_str());
    unlink(pid_file(paths, ifname).c_str());
    if (pinned) {
        for (const char* m : kPinnedMaps) unlink((dir + "/" + m).c_str());
        if (rmdir(dir.c_str()) != 0 && errno != ENOENT) return Error{"remove pin directory", dir, errno};
        rmdir(paths.pin_root().c_str());  // only succeeds when no other interface is pinned
    }
    if (!found_anything) return Error{"peakflow is not attached to " + ifname, "", 0, "nothing to detach"};
    spdlog::info("{}: detached", ifname);
    return Ok{};
}

AttachState query_attach_state(const std::string& ifname, const Paths& paths) {
    AttachState s;
    s.pinned = has_pinned_maps(paths.pin_dir(ifname));
    int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
    if (ifindex == 0) return s;
    XdpQuery xq = query_xdp(ifindex);
    if (is_ours_xdp(xq.drv_id))
        s.xdp_mode = XdpMode::Native;
    else if (is_ours_xdp(xq.skb_id))
        s.xdp_mode = XdpMode::Generic;
    s.tc_egress = prog_name_by_id(query_tc_filter(ifindex, BPF_TC_EGRESS)) == PF_PROG_TC_EGRESS;
    s.tc_ingress = prog_name_by_id(query_tc_filter(ifindex, BPF_TC_INGRESS)) == PF_PROG_TC_INGRESS;
    return s;
}

}  // namespace pf
