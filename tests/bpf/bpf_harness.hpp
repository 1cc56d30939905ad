#pragma once
// Runs the real peakflow programs through BPF_PROG_TEST_RUN and reads their maps back
// through pf::MapSet, the same reader the daemon uses. Every test loads its own unpinned
// object, so maps start empty and expected counters are exact. The tests run on one CPU:
// each CPU keeps its own MAC and flow tables, and capacities are per CPU.

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "packet_builder.hpp"
#include "peakflow.skel.h"
#include "peakflow/kernel/jiffies.hpp"
#include "peakflow/kernel/loader.hpp"
#include "peakflow/kernel/maps.hpp"

namespace pf {

// Readable gtest failure messages for the reader's types.
inline void PrintTo(const Counter& c, std::ostream* os) {
    *os << c.bytes << "B/" << c.packets << "p";
}

}  // namespace pf

namespace pf::test {

enum class Hook { XdpIngress, TcIngress, TcEgress };

inline const char* hook_name(Hook h) {
    switch (h) {
        case Hook::XdpIngress: return "XdpIngress";
        case Hook::TcIngress: return "TcIngress";
        case Hook::TcEgress: return "TcEgress";
    }
    return "?";
}

inline void PrintTo(Hook h, std::ostream* os) {
    *os << hook_name(h);
}

inline uint8_t hook_dir(Hook h) {
    return h == Hook::TcEgress ? PF_DIR_TX : PF_DIR_RX;
}

// The kernel reports the program's return value as a u32: TC_ACT_UNSPEC (-1) arrives
// as 0xffffffff.
inline uint32_t expected_retval(Hook h) {
    return h == Hook::XdpIngress ? static_cast<uint32_t>(XDP_PASS) : static_cast<uint32_t>(TC_ACT_UNSPEC);
}

// The MAC the program accounts a frame to: the peer, i.e. the source on ingress and the
// destination on egress.
inline Mac peer_mac(Hook h, const Mac& src, const Mac& dst) {
    return hook_dir(h) == PF_DIR_RX ? src : dst;
}

// The programs stamp flows in jiffies; the reader converts them to this clock, to within
// one tick (flow_time_slack_ns()).
inline uint64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

struct RunResult {
    int err = 0;  // errno of BPF_PROG_TEST_RUN, 0 when it ran
    uint32_t retval = 0;
    std::vector<uint8_t> data_out;
};

// One tick, plus what the conversion's nominal tick (1e9 / HZ) drifts from the coarse
// clock's ticks over a test's tens of milliseconds: the monotonic clock is slewed (NTP, up
// to 500 ppm) and a VM's ticks jitter, so they are not exactly 1e9 / HZ apart (an ASan run
// once missed one tick by 1 ns). 1 ms more is far above that drift, and the tests' 25 ms
// between packets stay far above the whole slack.
inline uint64_t flow_time_slack_ns() {
    static const uint64_t tick = JiffyClock::now().take().tick_ns();
    return tick + 1'000'000;
}

// BPF_PROG_TEST_RUN runs the program on the calling CPU.
inline void stay_on_one_cpu() {
    static const bool pinned = [] {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(sched_getcpu(), &set);
        return sched_setaffinity(0, sizeof set, &set) == 0;
    }();
    ASSERT_TRUE(pinned) << "sched_setaffinity";
}

class LoadedObject {
  public:
    static LoadedObject load(const LoadOptions& opts = {}) {
        install_libbpf_logger();
        stay_on_one_cpu();
        LoadedObject o;
        o.skel_ = open_and_load(opts).take();
        o.maps_ = MapSet::from_fds(map_fds(*o.skel_)).take();
        return o;
    }

    int prog_fd(Hook h) const {
        auto& p = skel_->progs;
        switch (h) {
            case Hook::XdpIngress: return bpf_program__fd(p.pf_xdp_ingress);
            case Hook::TcIngress: return bpf_program__fd(p.pf_tc_ingress);
            case Hook::TcEgress: return bpf_program__fd(p.pf_tc_egress);
        }
        return -1;
    }

    RunResult run(Hook h, const std::vector<uint8_t>& frame, uint32_t repeat = 1) const {
        RunResult r;
        r.data_out.resize(frame.size() + 256);  // room to show a program that grew the frame
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_out = r.data_out.data(),
                    .data_size_in = static_cast<uint32_t>(frame.size()),
                    .data_size_out = static_cast<uint32_t>(r.data_out.size()), .repeat = static_cast<int>(repeat));
        if (bpf_prog_test_run_opts(prog_fd(h), &opts) != 0) {
            r.err = errno;
            r.data_out.clear();
            return r;
        }
        r.retval = opts.retval;
        r.data_out.resize(opts.data_size_out);
        return r;
    }

    const MapSet& maps() const { return maps_; }

  private:
    SkeletonPtr skel_;
    MapSet maps_;
};

// Runs a frame and checks what must hold for every frame: the run succeeds, the verdict
// lets the packet through and the packet leaves unchanged.
inline void send(const LoadedObject& obj, Hook h, const std::vector<uint8_t>& frame, uint32_t repeat = 1) {
    RunResult r = obj.run(h, frame, repeat);
    ASSERT_EQ(r.err, 0) << hook_name(h) << ": BPF_PROG_TEST_RUN failed";
    EXPECT_EQ(r.retval, expected_retval(h)) << hook_name(h);
    EXPECT_EQ(r.data_out, frame) << hook_name(h) << ": packet modified";
}

inline std::string describe(const pf_flow_key& k) {
    char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, k.src_addr, src, sizeof src);
    inet_ntop(AF_INET6, k.dst_addr, dst, sizeof dst);
    Mac smac, dmac;
    std::copy(std::begin(k.src_mac), std::end(k.src_mac), smac.begin());
    std::copy(std::begin(k.dst_mac), std::end(k.dst_mac), dmac.begin());
    char buf[512];
    std::snprintf(buf, sizeof buf, "dir=%u family=%u proto=%u [%s]:%u -> [%s]:%u vlan=%u/%u mac %s -> %s pad=%u", k.dir,
                  k.family, k.proto, src, k.src_port, dst, k.dst_port, k.vlan[0], k.vlan[1], format_mac(smac).c_str(),
                  format_mac(dmac).c_str(), k.pad);
    return buf;
}

inline std::string describe(const MacRow& r) {
    return format_mac(r.mac) + " rx " + std::to_string(r.dir[PF_DIR_RX].bytes) + "B/" +
           std::to_string(r.dir[PF_DIR_RX].packets) + "p tx " + std::to_string(r.dir[PF_DIR_TX].bytes) + "B/" +
           std::to_string(r.dir[PF_DIR_TX].packets) + "p";
}

// Expected flow key, written with designated initializers in the tests.
struct KeySpec {
    uint8_t dir = PF_DIR_RX;
    uint8_t family = 4;
    uint8_t proto = 0;
    std::array<uint8_t, 16> src_addr{};
    std::array<uint8_t, 16> dst_addr{};
    uint16_t src_port = 0;
    uint16_t dst_port = 0;
    uint16_t vlan0 = 0;
    uint16_t vlan1 = 0;
    Mac src_mac{};
    Mac dst_mac{};
};

inline pf_flow_key make_key(const KeySpec& s) {
    pf_flow_key k{};
    std::copy(s.src_addr.begin(), s.src_addr.end(), k.src_addr);
    std::copy(s.dst_addr.begin(), s.dst_addr.end(), k.dst_addr);
    std::copy(s.src_mac.begin(), s.src_mac.end(), k.src_mac);
    std::copy(s.dst_mac.begin(), s.dst_mac.end(), k.dst_mac);
    k.src_port = s.src_port;
    k.dst_port = s.dst_port;
    k.vlan[0] = s.vlan0;
    k.vlan[1] = s.vlan1;
    k.proto = s.proto;
    k.dir = s.dir;
    k.family = s.family;
    return k;
}

// Map contents, sorted so comparisons do not depend on hash order.
inline std::vector<std::string> mac_rows(const LoadedObject& obj) {
    std::vector<std::string> out;
    for (const auto& r : obj.maps().read_macs().take()) out.push_back(describe(r));
    std::sort(out.begin(), out.end());
    return out;
}

inline std::vector<FlowRow> flow_rows(const LoadedObject& obj) {
    auto rows = obj.maps().read_flows().take();
    std::sort(rows.begin(), rows.end(),
              [](const FlowRow& a, const FlowRow& b) { return describe(a.key) < describe(b.key); });
    return rows;
}

inline MacRow mac_row(const Mac& mac, uint8_t dir, uint64_t bytes, uint64_t packets) {
    MacRow r;
    r.mac = mac;
    r.dir[dir] = Counter{bytes, packets};
    return r;
}

inline IfaceTotals iface_totals(uint8_t dir, uint64_t bytes, uint64_t packets) {
    IfaceTotals t;
    t.dir[dir] = Counter{bytes, packets};
    return t;
}

inline EventCounts events(uint64_t mac_full, uint64_t flow_full, uint64_t unparsable, uint64_t non_ip) {
    EventCounts e{};
    e[PF_EV_MAC_MAP_FULL] = mac_full;
    e[PF_EV_FLOW_MAP_FULL] = flow_full;
    e[PF_EV_UNPARSABLE] = unparsable;
    e[PF_EV_NON_IP] = non_ip;
    return e;
}

inline void expect_iface(const LoadedObject& obj, const IfaceTotals& want) {
    auto got = obj.maps().read_iface().take();
    for (int d = 0; d < PF_DIR_COUNT; d++) EXPECT_EQ(got.dir[d], want.dir[d]) << "interface direction " << d;
}

inline void expect_events(const LoadedObject& obj, const EventCounts& want) {
    EXPECT_EQ(obj.maps().read_events().take(), want) << "events: mac_map_full, flow_map_full, unparsable, non_ip";
}

inline void expect_macs(const LoadedObject& obj, std::vector<MacRow> want) {
    std::vector<std::string> w;
    for (const auto& r : want) w.push_back(describe(r));
    std::sort(w.begin(), w.end());
    EXPECT_EQ(mac_rows(obj), w);
}

// One flow row, checked field by field; seen_after/seen_before bound the timestamps.
inline void expect_flow(const FlowRow& row, const pf_flow_key& key, uint64_t bytes, uint64_t packets, uint8_t tcp_flags,
                        uint64_t seen_after, uint64_t seen_before) {
    EXPECT_EQ(describe(row.key), describe(key));
    EXPECT_EQ(row.bytes, bytes);
    EXPECT_EQ(row.packets, packets);
    EXPECT_EQ(row.tcp_flags, tcp_flags);
    EXPECT_NE(row.first_seen_ns, 0u);
    EXPECT_GE(row.first_seen_ns + flow_time_slack_ns(), seen_after);
    EXPECT_LE(row.first_seen_ns, row.last_seen_ns);
    EXPECT_LE(row.last_seen_ns, seen_before + flow_time_slack_ns());
}

struct ExpectedFlow {
    pf_flow_key key;
    uint64_t bytes = 0;
    uint64_t packets = 0;
    uint8_t tcp_flags = 0;
};

// The whole flow map, in any order; timestamps bounded by seen_after/seen_before.
inline void expect_flows(const LoadedObject& obj, std::vector<ExpectedFlow> want, uint64_t seen_after,
                         uint64_t seen_before) {
    auto got = flow_rows(obj);
    std::sort(want.begin(), want.end(),
              [](const ExpectedFlow& a, const ExpectedFlow& b) { return describe(a.key) < describe(b.key); });
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); i++) {
        SCOPED_TRACE("flow " + std::to_string(i));
        expect_flow(got[i], want[i].key, want[i].bytes, want[i].packets, want[i].tcp_flags, seen_after, seen_before);
    }
}

}  // namespace pf::test
