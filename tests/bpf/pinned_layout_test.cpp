// Pins with our names but another layout (left by another version or another program):
// the loader and the map reader refuse them before their first read, naming the pin and
// what differs. Reading one would let the kernel copy a value of the pin's size into a
// buffer sized for ours, which no sanitizer sees: the tests check the refusal, that the
// pin is left as it was, and that the process survives a value far larger than ours.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "peakflow/kernel/loader.hpp"
#include "peakflow/kernel/maps.hpp"

namespace pf::test {
namespace {

class PinnedLayoutTest : public ::testing::Test {
  protected:
    void SetUp() override {
        install_libbpf_logger();
        root_ = "/sys/fs/bpf/pf_layout_test_" + std::to_string(getpid());
        dir_ = root_ + "/pftest0";
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(root_); }

    LoadOptions options() const {
        LoadOptions o;
        o.mac_capacity = 16;
        o.flow_capacity = 64;
        o.pin_dir = dir_;
        return o;
    }

    // This build's full set of pins, as an attach leaves them; returns their pf_conf.
    pf_conf pin_our_maps() {
        auto skel = open_and_load(options());
        EXPECT_TRUE(skel) << skel.error().message();
        auto maps = MapSet::open_pinned(dir_);
        EXPECT_TRUE(maps) << maps.error().message();
        return maps ? maps->conf() : pf_conf{};
    }

    // Replaces the pin `name` by a new map of the given layout, every value filled with 0xab.
    Fd pin_foreign(const char* name, bpf_map_type type, uint32_t key_size, uint32_t value_size, uint32_t entries,
                   uint32_t flags = 0) {
        const std::string path = dir_ + "/" + name;
        unlink(path.c_str());
        LIBBPF_OPTS(bpf_map_create_opts, co, .map_flags = flags);
        Fd fd(bpf_map_create(type, "foreign", key_size, value_size, entries, &co));
        EXPECT_TRUE(fd.valid()) << "bpf_map_create: " << std::strerror(errno);
        EXPECT_EQ(bpf_obj_pin(fd.get(), path.c_str()), 0) << "bpf_obj_pin: " << std::strerror(errno);
        const bool per_cpu = type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH;
        const size_t n = per_cpu ? static_cast<size_t>(libbpf_num_possible_cpus()) : 1;
        std::vector<uint8_t> value(((value_size + 7) & ~7u) * n, 0xab);
        uint32_t k = 0;
        if (key_size == sizeof k) {
            EXPECT_EQ(bpf_map_update_elem(fd.get(), &k, value.data(), BPF_ANY), 0);
        }
        return fd;
    }

    std::string refusal(const char* name, const std::string& diff) const {
        return "unexpected layout of pinned map " + dir_ + "/" + name + " (" + diff +
               "; left by another version or program? run 'peakflow-bpf detach pftest0' and attach again)";
    }

    std::string load_error() const {
        auto skel = open_and_load(options());
        return skel ? "loaded" : skel.error().message();
    }

    std::string open_error() const {
        auto maps = MapSet::open_pinned(dir_);
        return maps ? "opened" : maps.error().message();
    }

    // The pin is still the foreign map, its first value untouched.
    void expect_left_alone(const char* name, const Fd& foreign, uint32_t value_size) const {
        Fd now(bpf_obj_get((dir_ + "/" + name).c_str()));
        ASSERT_TRUE(now.valid());
        bpf_map_info a{}, b{};
        uint32_t la = sizeof a, lb = sizeof b;
        ASSERT_EQ(bpf_obj_get_info_by_fd(foreign.get(), &a, &la), 0);
        ASSERT_EQ(bpf_obj_get_info_by_fd(now.get(), &b, &lb), 0);
        EXPECT_EQ(a.id, b.id) << name << " was replaced";
        std::vector<uint8_t> value(((value_size + 7) & ~7u) * static_cast<size_t>(libbpf_num_possible_cpus()));
        uint32_t k = 0;
        if (bpf_map_lookup_elem(now.get(), &k, value.data()) == 0) {
            EXPECT_EQ(value[0], 0xab) << name << " was written";
        }
    }

    std::string root_, dir_;
};

TEST_F(PinnedLayoutTest, OurOwnPinsAreAccepted) {
    const pf_conf c = pin_our_maps();
    EXPECT_EQ(load_error(), "loaded");
    auto maps = MapSet::open_pinned(dir_);
    ASSERT_TRUE(maps) << maps.error().message();
    EXPECT_EQ(maps->conf().seed, c.seed);
    EXPECT_EQ(maps->conf().flow_slots, c.flow_slots);
}

// A pf_conf value of 4 KiB read into the 24-byte struct would overwrite the stack.
TEST_F(PinnedLayoutTest, ConfWithALargerValueIsRefusedBeforeItIsRead) {
    pin_our_maps();
    Fd foreign = pin_foreign(PF_MAP_CONF, BPF_MAP_TYPE_ARRAY, 4, 4096, 1);
    EXPECT_EQ(load_error(), refusal(PF_MAP_CONF, "value size 4096, expected 24"));
    EXPECT_EQ(open_error(), refusal(PF_MAP_CONF, "value size 4096, expected 24"));
    expect_left_alone(PF_MAP_CONF, foreign, 4096);
}

TEST_F(PinnedLayoutTest, ConfAsAHashIsRefused) {
    pin_our_maps();
    Fd foreign = pin_foreign(PF_MAP_CONF, BPF_MAP_TYPE_HASH, 4, 24, 1);
    EXPECT_EQ(load_error(), refusal(PF_MAP_CONF, "type hash, expected array"));
    EXPECT_EQ(open_error(), refusal(PF_MAP_CONF, "type hash, expected array"));
    expect_left_alone(PF_MAP_CONF, foreign, 24);
}

TEST_F(PinnedLayoutTest, ConfWithASmallerValueIsRefused) {
    pin_our_maps();
    Fd foreign = pin_foreign(PF_MAP_CONF, BPF_MAP_TYPE_ARRAY, 4, 16, 1);
    EXPECT_EQ(load_error(), refusal(PF_MAP_CONF, "value size 16, expected 24"));
    EXPECT_EQ(open_error(), refusal(PF_MAP_CONF, "value size 16, expected 24"));
    expect_left_alone(PF_MAP_CONF, foreign, 16);
}

// Per-CPU values the readers size for ours: a larger one would overflow their heap buffers.
TEST_F(PinnedLayoutTest, CounterMapsOfAnotherLayoutAreRefused) {
    pin_our_maps();
    Fd events = pin_foreign(PF_MAP_EVENTS, BPF_MAP_TYPE_PERCPU_ARRAY, 4, 64, PF_EV_COUNT);
    EXPECT_EQ(load_error(), refusal(PF_MAP_EVENTS, "value size 64, expected 8"));
    EXPECT_EQ(open_error(), refusal(PF_MAP_EVENTS, "value size 64, expected 8"));
    expect_left_alone(PF_MAP_EVENTS, events, 64);

    unlink((dir_ + "/" PF_MAP_EVENTS).c_str());
    pin_our_maps();
    Fd iface = pin_foreign(PF_MAP_IFACE, BPF_MAP_TYPE_PERCPU_HASH, 8, 16, 2);
    EXPECT_EQ(load_error(), refusal(PF_MAP_IFACE, "type percpu_hash, expected percpu_array, key size 8, expected 4"));
    EXPECT_EQ(open_error(), refusal(PF_MAP_IFACE, "type percpu_hash, expected percpu_array, key size 8, expected 4"));
}

TEST_F(PinnedLayoutTest, TablesOfAnotherLayoutAreRefused) {
    const pf_conf c = pin_our_maps();
    const uint32_t flow_entries = c.ncpus * c.flow_slots;
    Fd mac = pin_foreign(PF_MAP_MAC, BPF_MAP_TYPE_PERCPU_ARRAY, 4, 32, c.mac_slots);
    EXPECT_EQ(load_error(), refusal(PF_MAP_MAC, "value size 32, expected 40"));
    EXPECT_EQ(open_error(), refusal(PF_MAP_MAC, "value size 32, expected 40"));
    expect_left_alone(PF_MAP_MAC, mac, 32);

    unlink((dir_ + "/" PF_MAP_MAC).c_str());
    pin_our_maps();
    // Not mmapable: the flow table could not be read in place.
    pin_foreign(PF_MAP_FLOW, BPF_MAP_TYPE_ARRAY, 4, sizeof(pf_flow_slot), flow_entries);
    EXPECT_EQ(load_error(), refusal(PF_MAP_FLOW, "flags 0x0, expected 0x400"));
    EXPECT_EQ(open_error(), refusal(PF_MAP_FLOW, "flags 0x0, expected 0x400"));
}

// The tables the loader sizes must have the entries pf_conf gives them.
TEST_F(PinnedLayoutTest, TablesOfAnotherSizeThanTheConfSaysAreRefused) {
    const pf_conf c = pin_our_maps();
    const uint32_t flow_entries = c.ncpus * c.flow_slots;
    const std::string diff =
        "max_entries " + std::to_string(flow_entries / 2) + ", expected " + std::to_string(flow_entries);
    Fd ack = pin_foreign(PF_MAP_FLOW_ACK, BPF_MAP_TYPE_ARRAY, 4, sizeof(pf_flow_ack), flow_entries / 2, BPF_F_MMAPABLE);
    EXPECT_EQ(load_error(), refusal(PF_MAP_FLOW_ACK, diff));
    EXPECT_EQ(open_error(), refusal(PF_MAP_FLOW_ACK, diff));
    expect_left_alone(PF_MAP_FLOW_ACK, ack, sizeof(pf_flow_ack));
}

// pf_used is only the programs' (no reader opens it), but the loader reuses it.
TEST_F(PinnedLayoutTest, EveryPinIsCheckedByTheLoader) {
    pin_our_maps();
    pin_foreign(PF_MAP_USED, BPF_MAP_TYPE_ARRAY, 4, 8, 1);
    EXPECT_EQ(load_error(), refusal(PF_MAP_USED, "type array, expected percpu_array"));
}

}  // namespace
}  // namespace pf::test
