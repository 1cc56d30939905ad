#include "peakflow/kernel/jiffies.hpp"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <sys/utsname.h>
#include <zlib.h>

#include <cerrno>
#include <cmath>
#include <mutex>
#include <optional>
#include <sstream>

#include "peakflow/common/fd.hpp"
#include "peakflow/common/text_file.hpp"

namespace pf {

unsigned parse_config_hz(const std::string& text) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("CONFIG_HZ=", 0) != 0) continue;
        unsigned hz = 0;
        for (char c : line.substr(10)) {
            if (c < '0' || c > '9') return 0;
            hz = hz * 10 + static_cast<unsigned>(c - '0');
            if (hz > 100000) return 0;
        }
        return hz >= 24 && hz <= 10000 ? hz : 0;
    }
    return 0;
}

unsigned hz_from_tick_ns(double tick_ns) {
    for (unsigned hz : {100u, 250u, 300u, 1000u}) {
        double want = 1e9 / hz;
        if (std::fabs(tick_ns - want) <= want * 0.1) return hz;
    }
    return 0;
}

namespace {

struct Sample {
    uint64_t j_before, ns, j_after;
};

// XDP program run by BPF_PROG_TEST_RUN: stores jiffies, the coarse clock and jiffies again
// in a one-element array. The coarse clock's helper came with Linux 5.11; before, the
// precise monotonic clock stands in (precise()): it reads up to a tick past the tick's
// start, which JiffyClock::now() takes off, so that converted times are not ahead of the
// packets (a flow idle "at once" expires at once: FlowExportTake failed without it on
// Debian 11's 5.10, tests/vm/kernel_tier.sh) and within about a tick, their resolution, of
// the coarse clock's.
class Probe {
  public:
    static Result<Probe> load() {
        auto p = load(BPF_FUNC_ktime_get_coarse_ns);
        if (!p && p.error().err == EINVAL) return load(BPF_FUNC_ktime_get_ns);
        return p;
    }
    bool precise() const { return precise_; }

    static Result<Probe> load(int clock_helper) {
        Probe p;
        p.precise_ = clock_helper == BPF_FUNC_ktime_get_ns;
        p.map_.reset(bpf_map_create(BPF_MAP_TYPE_ARRAY, "pf_jiffy_probe", 4, sizeof(Sample), 1, nullptr));
        if (!p.map_.valid()) return Error{"create the clock probe map", "", errno, "needs root or CAP_BPF"};
        auto ins = [](uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
            bpf_insn i{};
            i.code = code;
            i.dst_reg = dst & 0xf;
            i.src_reg = src & 0xf;
            i.off = off;
            i.imm = imm;
            return i;
        };
        const bpf_insn prog[] = {
            ins(BPF_ST | BPF_MEM | BPF_W, BPF_REG_10, 0, -4, 0),                            // *(u32 *)(fp - 4) = 0
            ins(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, p.map_.get()),  // r1 = map
            ins(0, 0, 0, 0, 0),
            ins(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0),  // r2 = fp
            ins(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -4),          // r2 -= 4
            ins(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
            ins(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 7, 0),  // if !r0 goto out
            ins(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_0, 0, 0),
            ins(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_jiffies64),
            ins(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_6, BPF_REG_0, 0, 0),
            ins(BPF_JMP | BPF_CALL, 0, 0, 0, clock_helper),
            ins(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_6, BPF_REG_0, 8, 0),
            ins(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_jiffies64),
            ins(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_6, BPF_REG_0, 16, 0),
            ins(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_PASS),  // out:
            ins(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
        };
        p.prog_.reset(
            bpf_prog_load(BPF_PROG_TYPE_XDP, "pf_jiffy_probe", "GPL", prog, sizeof prog / sizeof prog[0], nullptr));
        if (!p.prog_.valid()) return Error{"load the clock probe", "", errno, "needs root or CAP_BPF"};
        return p;
    }

    Result<Sample> sample() const {
        uint8_t frame[64] = {};
        for (int attempt = 0; attempt < 100; attempt++) {
            LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = sizeof frame);
            if (bpf_prog_test_run_opts(prog_.get(), &o) != 0) return Error{"run the clock probe", "", errno};
            Sample s{};
            uint32_t key = 0;
            if (bpf_map_lookup_elem(map_.get(), &key, &s) != 0) return Error{"read the clock probe", "", errno};
            if (s.j_before == s.j_after) return s;  // no tick between the two reads
        }
        return Error{"sample the clock", "", 0, "jiffies kept changing"};
    }

  private:
    Fd map_, prog_;
    bool precise_ = false;
};

// The kernel's own config as /proc/config.gz shows it (CONFIG_IKCONFIG_PROC), "" without.
std::string read_proc_config() {
    gzFile f = gzopen("/proc/config.gz", "rb");
    if (!f) return {};
    std::string text;
    char buf[16384];
    int n;
    while ((n = gzread(f, buf, sizeof buf)) > 0 && text.size() < (16u << 20)) text.append(buf, static_cast<size_t>(n));
    gzclose(f);
    return text;
}

// Measures the tick: the clock's step between two consecutive changes of jiffies. An
// attempt preempted between its samples gives no steady figure; on a busy machine that
// takes several tries (each costs about two ticks).
Result<uint64_t> measure_tick_ns(const Probe& probe) {
    for (int attempt = 0; attempt < 50; attempt++) {
        auto edge = [&](uint64_t from) -> Result<Sample> {
            for (int i = 0; i < 1'000'000; i++) {
                auto s = probe.sample();
                if (!s || s->j_before != from) return s;
            }
            return Error{"measure the kernel tick", "", 0, "jiffies did not advance"};
        };
        auto s0 = probe.sample();
        if (!s0) return s0.error();
        auto s1 = edge(s0->j_before);
        if (!s1) return s1.error();
        auto s2 = edge(s1->j_before);
        if (!s2) return s2.error();
        double tick = double(s2->ns - s1->ns) / double(s2->j_before - s1->j_before);
        if (unsigned hz = hz_from_tick_ns(tick)) return uint64_t{1'000'000'000} / hz;
    }
    return Error{"measure the kernel tick", "", 0, "no steady HZ found"};
}

}  // namespace

uint64_t JiffyClock::to_ns(uint64_t jiffies) const {
    if (jiffies == 0) return 0;
    if (jiffies <= j_) return ns_ - (j_ - jiffies) * tick_;
    return ns_ + (jiffies - j_) * tick_;
}

Result<JiffyClock> JiffyClock::now() {
    // One probe and one tick measurement per process.
    static std::mutex mu;
    static std::optional<Probe> probe;
    static uint64_t tick_ns = 0;
    std::lock_guard lock(mu);
    if (!probe) {
        auto p = Probe::load();
        if (!p) return p.error();
        probe.emplace(std::move(*p));
    }
    if (tick_ns == 0) {
        utsname u{};
        unsigned hz = uname(&u) == 0 ? parse_config_hz(read_text_file(std::string("/boot/config-") + u.release)) : 0;
        if (!hz) hz = parse_config_hz(read_proc_config());
        if (hz) {
            tick_ns = 1'000'000'000u / hz;
        } else {
            auto t = measure_tick_ns(*probe);
            if (!t) return t.error();
            tick_ns = *t;
        }
    }
    auto s = probe->sample();
    if (!s) return s.error();
    return JiffyClock(s->j_before, probe->precise() ? s->ns - tick_ns : s->ns, tick_ns);
}

}  // namespace pf
