// Default-route interface detection against a fake procfs tree laid out the way the kernel
// writes it: /proc/net/route rows are tab separated with little-endian hex addresses, hex
// flags and a decimal metric, each line padded with spaces to 127 characters;
// /proc/net/ipv6_route is space separated with a hex metric. The links are described as the
// netlink dump gives them (LinkDesc), so bridges and bonds with physical members can be
// tested here, which a test namespace cannot have (see test_default_iface.sh).

#include <gtest/gtest.h>
#include <net/if.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "peakflow/kernel/ifaces.hpp"

namespace fs = std::filesystem;

namespace pf {
namespace {

constexpr const char* kRouteHeader =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT";
constexpr const char* kHint =
    " (name the interface to count on: peakflow-bpf attach IFACE, or interfaces: in the config)";
constexpr const char* kVirtual = "; virtual interfaces are never picked automatically";

// One /proc/net/route row, as net/ipv4/fib_trie.c prints it.
std::string route_row(const std::string& ifname, const char* dest, const char* gw, unsigned flags, int metric,
                      const char* mask) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "%s\t%s\t%s\t%04X\t0\t0\t%d\t%s\t0\t0\t0", ifname.c_str(), dest, gw, flags, metric,
                  mask);
    return buf;
}

// One /proc/net/ipv6_route row, as net/ipv6/route.c prints it.
std::string route6_row(const std::string& dest, const char* plen, const std::string& nexthop, unsigned metric,
                       unsigned flags, const std::string& ifname) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s %s %032x %02x %s %08x %08x %08x %08x %8s", dest.c_str(), plen, 0u, 0u,
                  nexthop.c_str(), metric, 1u, 0u, flags, ifname.c_str());
    return buf;
}

constexpr unsigned kRtfUp = 0x1;
constexpr unsigned kRtfGateway = 0x2;
const std::string kAny6(32, '0');
const std::string kGw6 = "fe800000000000000000000000000001";

class IfacesTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "pf_ifaces_XXXXXX").string();
        ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
        root_ = tmpl;
        paths_.procfs = root_ + "/proc";
        fs::create_directories(paths_.procfs + "/net");
        // Both files exist (empty of routes) unless a test writes rows.
        write_route({});
        write_route6({});
    }

    void TearDown() override { fs::remove_all(root_); }

    void write_route(const std::vector<std::string>& rows) {
        std::ofstream out(paths_.procfs + "/net/route");
        auto padded = [](const std::string& s) { return s + std::string(s.size() < 127 ? 127 - s.size() : 0, ' '); };
        out << padded(kRouteHeader) << "\n";
        for (const auto& r : rows) out << padded(r) << "\n";
    }

    void write_route6(const std::vector<std::string>& rows) {
        std::ofstream out(paths_.procfs + "/net/ipv6_route");
        for (const auto& r : rows) out << r << "\n";
    }

    int index_of(const std::string& ifname) {
        for (const auto& l : links_)
            if (l.name == ifname) return l.index;
        ADD_FAILURE() << "test bug: no link " << ifname;
        return 0;
    }
    // A link as the dump describes it; `master` names the bridge or bond it belongs to.
    void add(const std::string& ifname, const std::string& kind, bool device, const std::string& master = "") {
        LinkDesc l;
        l.name = ifname;
        l.index = static_cast<int>(links_.size()) + 2;  // 1 is lo's
        l.kind = kind;
        l.device = device;
        l.master = master.empty() ? 0 : index_of(master);
        links_.push_back(l);
    }
    // A NIC: a parent device, no kind.
    void add_physical(const std::string& ifname, const std::string& master = "") { add(ifname, "", true, master); }
    void add_virtual(const std::string& ifname, const std::string& kind = "", const std::string& master = "") {
        add(ifname, kind, false, master);
    }
    void add_bridge(const std::string& ifname, const std::string& master = "") { add(ifname, "bridge", false, master); }
    void add_bond(const std::string& ifname, const std::string& master = "") { add(ifname, "bond", false, master); }
    void add_loopback() {
        LinkDesc l;
        l.name = "lo";
        l.index = 1;
        l.loopback = true;
        links_.push_back(l);
    }

    std::string detect_error() {
        auto r = detect_default_interface(paths_, links_);
        if (r.ok()) return "unexpected success: " + r.value().ifname;
        return r.error().message();
    }
    DefaultInterface detect() {
        auto r = detect_default_interface(paths_, links_);
        EXPECT_TRUE(r.ok()) << r.error().message();
        return r.ok() ? r.value() : DefaultInterface{};
    }

    std::string root_;
    Paths paths_;
    std::vector<LinkDesc> links_;
};

std::string via(const std::string& routes) {
    return "no interface to count on: the default " + routes;
}

TEST_F(IfacesTest, DefaultViaPhysicalEth0) {
    add_physical("eth0");
    write_route({route_row("eth0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 100, "00000000"),
                 route_row("eth0", "0002A8C0", "00000000", kRtfUp, 100, "00FFFFFF")});
    DefaultInterface d = detect();
    EXPECT_EQ(d.ifname, "eth0");
    EXPECT_EQ(d.via, "");
    EXPECT_EQ(d.reason, "which carries the default route");
}

TEST_F(IfacesTest, LowestMetricWinsAmongPhysicalInterfaces) {
    add_physical("eth0");
    add_physical("wlan0");
    // The higher-metric route is listed first so file order cannot be what decides.
    write_route({route_row("eth0", "00000000", "0101A8C0", kRtfUp | kRtfGateway, 600, "00000000"),
                 route_row("wlan0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 100, "00000000")});
    EXPECT_EQ(detect().ifname, "wlan0");
}

// The case of issue #19: in a namespace the default route goes via a veth whose name does
// not start with "veth"; it is a veth all the same (its kind says so).
TEST_F(IfacesTest, DefaultViaVethIsRejectedByKindWhateverItsName) {
    add_loopback();
    add_virtual("nc-b", "veth");
    write_route({route_row("nc-b", "00000000", "010012C6", kRtfUp | kRtfGateway, 0, "00000000")});
    EXPECT_EQ(detect_error(), via("route goes via nc-b (a veth)") + kVirtual + kHint);
}

TEST_F(IfacesTest, DefaultViaMemberlessBridgeIsRejected) {
    add_bridge("br0");
    write_route({route_row("br0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 0, "00000000")});
    EXPECT_EQ(detect_error(), via("route goes via br0 (a bridge without members)") + kVirtual + kHint);
}

TEST_F(IfacesTest, DefaultViaDocker0IsRejected) {
    // docker0 is a Linux bridge whose members are the containers' veths.
    add_bridge("docker0");
    add_virtual("veth1a2b3c", "veth", "docker0");
    write_route({route_row("docker0", "00000000", "010011AC", kRtfUp | kRtfGateway, 0, "00000000")});
    EXPECT_EQ(detect_error(), via("route goes via docker0 (a bridge with no physical member: veth1a2b3c is a veth)") +
                                  kVirtual + kHint);
}

TEST_F(IfacesTest, DockerNamedInterfaceWithoutBridgeKindIsRejectedByName) {
    add_virtual("br-5f1c2d3e4a5b");
    write_route({route_row("br-5f1c2d3e4a5b", "00000000", "010012AC", kRtfUp | kRtfGateway, 0, "00000000")});
    EXPECT_EQ(detect_error(), via("route goes via br-5f1c2d3e4a5b (a docker network)") + kVirtual + kHint);
}

TEST_F(IfacesTest, DefaultViaTunIsRejected) {
    add_virtual("tun0", "tun");
    write_route({route_row("tun0", "00000000", "00000000", kRtfUp, 0, "00000000")});
    EXPECT_EQ(detect_error(), via("route goes via tun0 (a tun/tap device)") + kVirtual + kHint);
}

TEST_F(IfacesTest, DefaultViaLoopbackIsRejected) {
    add_loopback();
    write_route({route_row("lo", "00000000", "00000000", kRtfUp, 0, "00000000")});
    EXPECT_EQ(detect_error(), via("route goes via lo (the loopback interface)") + kVirtual + kHint);
}

TEST_F(IfacesTest, DefaultViaOtherVirtualKindsSaysTheKind) {
    add_virtual("wg0", "wireguard");
    write_route({route_row("wg0", "00000000", "00000000", kRtfUp, 0, "00000000")});
    EXPECT_EQ(detect_error(), via("route goes via wg0 (a virtual wireguard interface)") + kVirtual + kHint);
}

TEST_F(IfacesTest, RouteViaAnInterfaceTheDumpDoesNotListIsNotPresent) {
    write_route({route_row("eth9", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 0, "00000000")});
    EXPECT_EQ(detect_error(), via("route goes via eth9 (not present)") + kHint);
}

// Every skipped interface is listed once, each with its reason, IPv4 ones first.
TEST_F(IfacesTest, EverySkippedInterfaceIsListedOnceWithItsReason) {
    add_loopback();
    add_virtual("nc-b", "veth");
    add_virtual("tun0", "tun");
    add_bridge("br0");
    write_route({route_row("nc-b", "00000000", "010012C6", kRtfUp | kRtfGateway, 0, "00000000"),
                 route_row("br0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 10, "00000000")});
    write_route6({route6_row(kAny6, "00", kGw6, 0x400, kRtfUp | kRtfGateway, "tun0"),
                  route6_row(kAny6, "00", kGw6, 0x400, kRtfUp | kRtfGateway, "nc-b")});
    EXPECT_EQ(
        detect_error(),
        via("routes go via nc-b (a veth), br0 (a bridge without members), tun0 (a tun/tap device)") + kVirtual + kHint);
}

TEST_F(IfacesTest, PhysicalWinsOverAVirtualWithLowerMetric) {
    add_virtual("veth0", "veth");
    add_physical("eth0");
    write_route({route_row("veth0", "00000000", "0101A8C0", kRtfUp | kRtfGateway, 0, "00000000"),
                 route_row("eth0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 500, "00000000")});
    EXPECT_EQ(detect().ifname, "eth0");
}

// --- bridges and bonds: the physical interface of the management address ---------------

TEST_F(IfacesTest, BridgeWithOnePhysicalMemberCountsOnIt) {
    // A KVM host: the NIC and the guests' taps in br0, which has the address.
    add_bridge("br0");
    add_physical("enp3s0", "br0");
    add_virtual("vnet0", "tun", "br0");
    add_virtual("vnet1", "tun", "br0");
    write_route({route_row("br0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 0, "00000000")});
    DefaultInterface d = detect();
    EXPECT_EQ(d.ifname, "enp3s0");
    EXPECT_EQ(d.via, "br0");
    EXPECT_EQ(d.reason, "the only physical member of br0 (a bridge), which carries the default route");
}

TEST_F(IfacesTest, BondWithOnePhysicalMemberCountsOnIt) {
    add_bond("bond0");
    add_physical("eth0", "bond0");
    write_route({route_row("bond0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 0, "00000000")});
    DefaultInterface d = detect();
    EXPECT_EQ(d.ifname, "eth0");
    EXPECT_EQ(d.via, "bond0");
    EXPECT_EQ(d.reason, "the only physical member of bond0 (a bond), which carries the default route");
}

TEST_F(IfacesTest, BondWithSeveralPhysicalMembersIsRefusedNamingThem) {
    add_bond("bond0");
    add_physical("eth0", "bond0");
    add_physical("eth1", "bond0");
    write_route({route_row("bond0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 0, "00000000")});
    // Not "virtual": the user has to choose among physical interfaces.
    EXPECT_EQ(detect_error(),
              via("route goes via bond0 (a bond over several physical interfaces: eth0, eth1)") + kHint);
}

TEST_F(IfacesTest, BridgeWithSeveralPhysicalMembersIsRefusedNamingThem) {
    add_bridge("br0");
    add_physical("eth0", "br0");
    add_virtual("veth0", "veth", "br0");
    add_physical("eth1", "br0");
    write_route({route_row("br0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 0, "00000000")});
    EXPECT_EQ(detect_error(),
              via("route goes via br0 (a bridge over several physical interfaces: eth0, eth1)") + kHint);
}

TEST_F(IfacesTest, BridgeOfVethsIsRefusedNamingTheMembers) {
    // veths are never physical, whatever they are a member of.
    add_bridge("br0");
    add_virtual("vm1", "veth", "br0");
    add_virtual("tap0", "tun", "br0");
    write_route({route_row("br0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 0, "00000000")});
    EXPECT_EQ(detect_error(),
              via("route goes via br0 (a bridge with no physical member: vm1 is a veth, tap0 is a tun/tap device)") +
                  kVirtual + kHint);
}

TEST_F(IfacesTest, BondInABridgeIsLookedThrough) {
    // A NAS: br0 for the VMs over bond0 over the one NIC.
    add_bridge("br0");
    add_bond("bond0", "br0");
    add_physical("eth0", "bond0");
    add_virtual("vnet0", "tun", "br0");
    write_route({route_row("br0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 0, "00000000")});
    DefaultInterface d = detect();
    EXPECT_EQ(d.ifname, "eth0");
    EXPECT_EQ(d.via, "br0");
    EXPECT_EQ(d.reason, "the only physical member of br0 (a bridge, through bond0), which carries the default route");
}

TEST_F(IfacesTest, BondOfTwoInABridgeIsRefusedNamingBoth) {
    add_bridge("br0");
    add_bond("bond0", "br0");
    add_physical("eth0", "bond0");
    add_physical("eth1", "bond0");
    write_route({route_row("br0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 0, "00000000")});
    EXPECT_EQ(detect_error(),
              via("route goes via br0 (a bridge over several physical interfaces: eth0, eth1)") + kHint);
}

TEST_F(IfacesTest, BridgeMemberCompetesWithTheBridgeRouteMetric) {
    // br0's route (metric 100) beats eth1's (600): its member eth0 is counted on.
    add_bridge("br0");
    add_physical("eth0", "br0");
    add_physical("eth1");
    write_route({route_row("eth1", "00000000", "0101A8C0", kRtfUp | kRtfGateway, 600, "00000000"),
                 route_row("br0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 100, "00000000")});
    EXPECT_EQ(detect().ifname, "eth0");
}

TEST_F(IfacesTest, AmbiguousBridgeIsSkippedForAnotherPhysicalDefault) {
    add_bridge("br0");
    add_physical("eth0", "br0");
    add_physical("eth1", "br0");
    add_physical("wlan0");
    write_route({route_row("br0", "00000000", "0101A8C0", kRtfUp | kRtfGateway, 0, "00000000"),
                 route_row("wlan0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 600, "00000000")});
    EXPECT_EQ(detect().ifname, "wlan0");
}

// --- routes -------------------------------------------------------------------------------

TEST_F(IfacesTest, NoRouteFilesAtAllMeansNoDefaultRoute) {
    fs::remove(paths_.procfs + "/net/route");
    fs::remove(paths_.procfs + "/net/ipv6_route");
    EXPECT_EQ(detect_error(), std::string("no default route found") + kHint);
}

TEST_F(IfacesTest, NoDefaultRouteFound) {
    add_physical("eth0");
    // Only on-link and host routes: neither destination nor mask is 0.
    write_route({route_row("eth0", "0002A8C0", "00000000", kRtfUp, 0, "00FFFFFF"),
                 route_row("eth0", "0100000A", "0102A8C0", kRtfUp | kRtfGateway, 0, "FFFFFFFF")});
    write_route6({route6_row("fd000000000000000000000000000000", "40", kAny6, 0x100, kRtfUp, "eth0")});
    EXPECT_EQ(detect_error(), std::string("no default route found") + kHint);
}

TEST_F(IfacesTest, NonDefaultRoutesAreIgnoredEvenWithLowerMetric) {
    add_physical("eth0");
    add_physical("eth1");
    // eth1 only has a 10.0.0.0/8 route with metric 0; the default is via eth0.
    write_route({route_row("eth1", "0000000A", "0101A8C0", kRtfUp | kRtfGateway, 0, "000000FF"),
                 route_row("eth0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 100, "00000000")});
    EXPECT_EQ(detect().ifname, "eth0");
}

TEST_F(IfacesTest, RouteWithoutRtfUpIsIgnored) {
    add_physical("eth0");
    add_physical("eth1");
    // eth1's default has the better metric but is down (gateway flag only).
    write_route({route_row("eth1", "00000000", "0101A8C0", kRtfGateway, 0, "00000000"),
                 route_row("eth0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 100, "00000000")});
    EXPECT_EQ(detect().ifname, "eth0");
}

TEST_F(IfacesTest, OnlyDownDefaultRoutesMeansNoDefaultRoute) {
    add_physical("eth0");
    write_route({route_row("eth0", "00000000", "0102A8C0", kRtfGateway, 0, "00000000")});
    write_route6({route6_row(kAny6, "00", kGw6, 0x400, kRtfGateway, "eth0")});
    EXPECT_EQ(detect_error(), std::string("no default route found") + kHint);
}

TEST_F(IfacesTest, Ipv6OnlyDefaultRouteIsPicked) {
    add_loopback();
    add_physical("eth0");
    // What a real IPv6-only host shows, including the unreachable default on lo that
    // the kernel always lists (flags RTF_REJECT|RTF_NONEXTHOP, no RTF_UP) and a
    // link-local prefix route.
    write_route6({route6_row("fe800000000000000000000000000000", "40", kAny6, 0x100, kRtfUp, "eth0"),
                  route6_row(kAny6, "00", kGw6, 0x400, 0x00450003, "eth0"),
                  route6_row(kAny6, "00", kAny6, 0xffffffff, 0x00200200, "lo")});
    EXPECT_EQ(detect().ifname, "eth0");
}

TEST_F(IfacesTest, Ipv6MetricIsReadAsHex) {
    add_physical("eth0");
    add_physical("eth1");
    // 0x99 (153) beats 0xa0 (160); parsed as decimal, "000000a0" would stop at the
    // "a" and give 0, and eth0 would win.
    write_route6({route6_row(kAny6, "00", kGw6, 0x0099, kRtfUp | kRtfGateway, "eth1"),
                  route6_row(kAny6, "00", kGw6, 0x00a0, kRtfUp | kRtfGateway, "eth0")});
    EXPECT_EQ(detect().ifname, "eth1");
}

TEST_F(IfacesTest, Ipv4DefaultIsPreferredOverIpv6) {
    add_physical("eth0");
    add_physical("eth1");
    write_route({route_row("eth0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 1000, "00000000")});
    write_route6({route6_row(kAny6, "00", kGw6, 0x1, kRtfUp | kRtfGateway, "eth1")});
    EXPECT_EQ(detect().ifname, "eth0");
}

TEST_F(IfacesTest, Ipv6PhysicalIsUsedWhenIpv4DefaultIsAVeth) {
    add_virtual("veth0", "veth");
    add_physical("eth0");
    write_route({route_row("veth0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 0, "00000000")});
    write_route6({route6_row(kAny6, "00", kGw6, 0x400, kRtfUp | kRtfGateway, "eth0")});
    EXPECT_EQ(detect().ifname, "eth0");
}

// --- what a link is -----------------------------------------------------------------------

TEST_F(IfacesTest, WhyNotPhysicalNamesEachKind) {
    add_loopback();
    add_physical("eth0");
    add_bridge("br0");
    add_bond("bond0");
    add_virtual("tap0", "tun");
    add_virtual("veth0", "veth");
    add_virtual("nc-b", "veth");
    add_virtual("dummy0", "dummy");
    add_virtual("sit0");
    EXPECT_EQ(why_not_physical(links_, "eth0"), "");
    EXPECT_EQ(why_not_physical(links_, "br0"), "a bridge");
    EXPECT_EQ(why_not_physical(links_, "bond0"), "a bond");
    EXPECT_EQ(why_not_physical(links_, "tap0"), "a tun/tap device");
    EXPECT_EQ(why_not_physical(links_, "veth0"), "a veth");
    EXPECT_EQ(why_not_physical(links_, "nc-b"), "a veth");
    EXPECT_EQ(why_not_physical(links_, "dummy0"), "a virtual dummy interface");
    EXPECT_EQ(why_not_physical(links_, "sit0"), "a virtual interface");
    EXPECT_EQ(why_not_physical(links_, "lo"), "the loopback interface");
    EXPECT_EQ(why_not_physical(links_, "eth9"), "not present");
}

TEST(BackedByDevice, FromLinux516TheParentDeviceDecides) {
    EXPECT_TRUE(backed_by_device(true, "", false, true));
    EXPECT_FALSE(backed_by_device(false, "", false, true));  // no parent: virtual, kind or not
    EXPECT_FALSE(backed_by_device(false, "dummy", false, true));
}

TEST(BackedByDevice, BeforeLinux516ALinkWithoutKindCounts) {
    EXPECT_TRUE(backed_by_device(false, "", false, false));
    EXPECT_FALSE(backed_by_device(false, "veth", false, false));
    EXPECT_FALSE(backed_by_device(false, "bridge", false, false));
    EXPECT_FALSE(backed_by_device(false, "", true, false));  // lo has no kind either
}

// The real dump of this process's network namespace: it has lo, whatever else it has.
TEST(ReadLinks, ListsTheLoopbackOfThisNamespace) {
    auto links = read_links();
    ASSERT_TRUE(links.ok()) << links.error().message();
    const LinkDesc* lo = nullptr;
    for (const auto& l : *links)
        if (l.name == "lo") lo = &l;
    ASSERT_NE(lo, nullptr);
    EXPECT_EQ(lo->index, static_cast<int>(if_nametoindex("lo")));
    EXPECT_TRUE(lo->loopback);
    EXPECT_FALSE(lo->device);
    EXPECT_EQ(lo->master, 0);
    EXPECT_EQ(why_not_physical(*links, "lo"), "the loopback interface");
}

}  // namespace
}  // namespace pf
