// Default-route interface detection against a fake procfs/sysfs tree laid out the way
// the kernel writes it: /proc/net/route rows are tab separated with little-endian hex
// addresses, hex flags and a decimal metric, each line padded with spaces to 127
// characters; /proc/net/ipv6_route is space separated with a hex metric.

#include <gtest/gtest.h>
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
constexpr const char* kHint = " (name the interface: peakflow-bpf attach IFACE)";

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
        paths_.sysfs = root_ + "/sys";
        fs::create_directories(paths_.procfs + "/net");
        fs::create_directories(paths_.sysfs + "/class/net");
        fs::create_directories(root_ + "/sys/devices/pci0000:00/0000:00:03.0");
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

    std::string netdir(const std::string& ifname) { return paths_.sysfs + "/class/net/" + ifname; }

    // A NIC: `device` is a symlink into the bus hierarchy, as on real hardware.
    void add_physical(const std::string& ifname) {
        fs::create_directories(netdir(ifname));
        fs::create_directory_symlink(root_ + "/sys/devices/pci0000:00/0000:00:03.0", netdir(ifname) + "/device");
    }
    // Virtual interfaces: no `device`, plus whatever marks their kind.
    void add_virtual(const std::string& ifname) { fs::create_directories(netdir(ifname)); }
    void add_bridge(const std::string& ifname) { fs::create_directories(netdir(ifname) + "/bridge"); }
    void add_bond(const std::string& ifname) { fs::create_directories(netdir(ifname) + "/bonding"); }
    void add_tun(const std::string& ifname) {
        fs::create_directories(netdir(ifname));
        std::ofstream(netdir(ifname) + "/tun_flags") << "0x1002\n";
    }

    std::string detect_error() {
        auto r = detect_default_interface(paths_);
        if (r.ok()) return "unexpected success: " + r.value();
        return r.error().message();
    }

    std::string root_;
    Paths paths_;
};

TEST_F(IfacesTest, DefaultViaPhysicalEth0) {
    add_physical("eth0");
    write_route({route_row("eth0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 100, "00000000"),
                 route_row("eth0", "0002A8C0", "00000000", kRtfUp, 100, "00FFFFFF")});
    auto r = detect_default_interface(paths_);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r.value(), "eth0");
}

TEST_F(IfacesTest, LowestMetricWinsAmongPhysicalInterfaces) {
    add_physical("eth0");
    add_physical("wlan0");
    // The higher-metric route is listed first so file order cannot be what decides.
    write_route({route_row("eth0", "00000000", "0101A8C0", kRtfUp | kRtfGateway, 600, "00000000"),
                 route_row("wlan0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 100, "00000000")});
    auto r = detect_default_interface(paths_);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r.value(), "wlan0");
}

TEST_F(IfacesTest, DefaultViaBridgeOnlyIsRejected) {
    add_bridge("br0");
    write_route({route_row("br0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 0, "00000000")});
    EXPECT_EQ(detect_error(),
              std::string("no physical interface carries the default route: it goes via br0 (a bridge)") + kHint);
}

TEST_F(IfacesTest, DefaultViaVethIsRejected) {
    add_virtual("veth1a2b3c");
    write_route({route_row("veth1a2b3c", "00000000", "010011AC", kRtfUp | kRtfGateway, 0, "00000000")});
    EXPECT_EQ(detect_error(),
              std::string("no physical interface carries the default route: it goes via veth1a2b3c (a veth)") + kHint);
}

TEST_F(IfacesTest, DefaultViaDocker0IsRejected) {
    // docker0 is a Linux bridge, so sysfs says so before the name is looked at.
    add_bridge("docker0");
    write_route({route_row("docker0", "00000000", "010011AC", kRtfUp | kRtfGateway, 0, "00000000")});
    EXPECT_EQ(detect_error(),
              std::string("no physical interface carries the default route: it goes via docker0 (a bridge)") + kHint);
}

TEST_F(IfacesTest, DockerNamedInterfaceWithoutBridgeDirIsRejectedByName) {
    add_virtual("br-5f1c2d3e4a5b");
    write_route({route_row("br-5f1c2d3e4a5b", "00000000", "010012AC", kRtfUp | kRtfGateway, 0, "00000000")});
    EXPECT_EQ(detect_error(), std::string("no physical interface carries the default route: it goes via "
                                          "br-5f1c2d3e4a5b (a docker network)") +
                                  kHint);
}

TEST_F(IfacesTest, DefaultViaTunIsRejected) {
    add_tun("tun0");
    write_route({route_row("tun0", "00000000", "00000000", kRtfUp, 0, "00000000")});
    EXPECT_EQ(
        detect_error(),
        std::string("no physical interface carries the default route: it goes via tun0 (a tun/tap device)") + kHint);
}

TEST_F(IfacesTest, DefaultViaLoopbackIsRejected) {
    add_virtual("lo");
    write_route({route_row("lo", "00000000", "00000000", kRtfUp, 0, "00000000")});
    EXPECT_EQ(detect_error(), std::string("no physical interface carries the default route: it goes via lo (the "
                                          "loopback interface)") +
                                  kHint);
}

TEST_F(IfacesTest, DefaultViaBondIsRejected) {
    add_bond("bond0");
    write_route({route_row("bond0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 0, "00000000")});
    EXPECT_EQ(detect_error(),
              std::string("no physical interface carries the default route: it goes via bond0 (a bond)") + kHint);
}

TEST_F(IfacesTest, PhysicalWinsOverAVirtualWithLowerMetric) {
    add_bridge("br0");
    add_physical("eth0");
    write_route({route_row("br0", "00000000", "0101A8C0", kRtfUp | kRtfGateway, 0, "00000000"),
                 route_row("eth0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 500, "00000000")});
    auto r = detect_default_interface(paths_);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r.value(), "eth0");
}

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
    auto r = detect_default_interface(paths_);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r.value(), "eth0");
}

TEST_F(IfacesTest, RouteWithoutRtfUpIsIgnored) {
    add_physical("eth0");
    add_physical("eth1");
    // eth1's default has the better metric but is down (gateway flag only).
    write_route({route_row("eth1", "00000000", "0101A8C0", kRtfGateway, 0, "00000000"),
                 route_row("eth0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 100, "00000000")});
    auto r = detect_default_interface(paths_);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r.value(), "eth0");
}

TEST_F(IfacesTest, OnlyDownDefaultRoutesMeansNoDefaultRoute) {
    add_physical("eth0");
    write_route({route_row("eth0", "00000000", "0102A8C0", kRtfGateway, 0, "00000000")});
    write_route6({route6_row(kAny6, "00", kGw6, 0x400, kRtfGateway, "eth0")});
    EXPECT_EQ(detect_error(), std::string("no default route found") + kHint);
}

TEST_F(IfacesTest, Ipv6OnlyDefaultRouteIsPicked) {
    add_physical("eth0");
    // What a real IPv6-only host shows, including the unreachable default on lo that
    // the kernel always lists (flags RTF_REJECT|RTF_NONEXTHOP, no RTF_UP) and a
    // link-local prefix route.
    write_route6({route6_row("fe800000000000000000000000000000", "40", kAny6, 0x100, kRtfUp, "eth0"),
                  route6_row(kAny6, "00", kGw6, 0x400, 0x00450003, "eth0"),
                  route6_row(kAny6, "00", kAny6, 0xffffffff, 0x00200200, "lo")});
    auto r = detect_default_interface(paths_);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r.value(), "eth0");
}

TEST_F(IfacesTest, Ipv6MetricIsReadAsHex) {
    add_physical("eth0");
    add_physical("eth1");
    // 0x99 (153) beats 0xa0 (160); parsed as decimal, "000000a0" would stop at the
    // "a" and give 0, and eth0 would win.
    write_route6({route6_row(kAny6, "00", kGw6, 0x0099, kRtfUp | kRtfGateway, "eth1"),
                  route6_row(kAny6, "00", kGw6, 0x00a0, kRtfUp | kRtfGateway, "eth0")});
    auto r = detect_default_interface(paths_);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r.value(), "eth1");
}

TEST_F(IfacesTest, Ipv4DefaultIsPreferredOverIpv6) {
    add_physical("eth0");
    add_physical("eth1");
    write_route({route_row("eth0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 1000, "00000000")});
    write_route6({route6_row(kAny6, "00", kGw6, 0x1, kRtfUp | kRtfGateway, "eth1")});
    auto r = detect_default_interface(paths_);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r.value(), "eth0");
}

TEST_F(IfacesTest, Ipv6PhysicalIsUsedWhenIpv4DefaultIsABridge) {
    add_bridge("br0");
    add_physical("eth0");
    write_route({route_row("br0", "00000000", "0102A8C0", kRtfUp | kRtfGateway, 0, "00000000")});
    write_route6({route6_row(kAny6, "00", kGw6, 0x400, kRtfUp | kRtfGateway, "eth0")});
    auto r = detect_default_interface(paths_);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r.value(), "eth0");
}

TEST_F(IfacesTest, WhyNotPhysicalNamesEachKind) {
    add_physical("eth0");
    add_bridge("br0");
    add_bond("bond0");
    add_tun("tap0");
    add_virtual("veth0");
    add_virtual("dummy0");
    add_virtual("lo");
    EXPECT_EQ(why_not_physical(paths_, "eth0"), "");
    EXPECT_EQ(why_not_physical(paths_, "br0"), "a bridge");
    EXPECT_EQ(why_not_physical(paths_, "bond0"), "a bond");
    EXPECT_EQ(why_not_physical(paths_, "tap0"), "a tun/tap device");
    EXPECT_EQ(why_not_physical(paths_, "veth0"), "a veth");
    EXPECT_EQ(why_not_physical(paths_, "dummy0"), "a virtual interface");
    EXPECT_EQ(why_not_physical(paths_, "lo"), "the loopback interface");
    EXPECT_EQ(why_not_physical(paths_, "eth9"), "not present");
}

TEST_F(IfacesTest, DeviceMayBeADirectory) {
    fs::create_directories(netdir("eth0") + "/device");
    EXPECT_EQ(why_not_physical(paths_, "eth0"), "");
}

}  // namespace
}  // namespace pf
