#pragma once
// Shared by the push report and customer report tests: a temporary history file filled
// through Store::commit_drain, and a MessageQueue that records what it is given.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "peakflow/accounting/store.hpp"
#include "peakflow/service/message_queue.hpp"

namespace pf::testing {

// Keeps every message in order; can be told to refuse (a full disk under the outbox).
class RecordingQueue : public MessageQueue {
  public:
    Status enqueue(const OutboundMessage& m) override {
        std::lock_guard<std::mutex> l(mu_);
        if (fail || accept == 0) return Error("outbox refused (test)");
        if (accept > 0) accept--;
        messages.push_back(m);
        return Ok{};
    }
    std::vector<OutboundMessage> take() {
        std::lock_guard<std::mutex> l(mu_);
        auto out = std::move(messages);
        messages.clear();
        return out;
    }
    bool fail = false;
    int accept = -1;  // >= 0: takes this many more messages, then refuses (a disk filling up)
    std::vector<OutboundMessage> messages;

  private:
    std::mutex mu_;
};

// One bucket row: bytes received (rx, down) and sent (tx, up) in the bucket holding ts.
struct Put {
    std::string iface;
    int64_t ts;
    int64_t mac;
    uint64_t rx, tx;
};

class HistoryFile : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/pf_push_test_XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        db_ = dir_ + "/history.db";
        store_ = Store::open(db_).take();
    }
    void TearDown() override {
        store_.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    // One drain holding every row; the peak flag from the calendar, as the daemon's.
    void commit(const Calendar& cal, const std::vector<Put>& puts) {
        std::map<std::string, DrainRows> by_iface;
        for (const auto& p : puts) {
            auto& d = by_iface[p.iface];
            d.iface = p.iface;
            d.map_id = 1;
            d.boot_id = "test-boot";
            BucketUpdate u;
            u.ts = Calendar::bucket_start(p.ts);
            u.mac = p.mac;
            u.peak = cal.is_peak(u.ts);
            u.delta[PF_DIR_RX] = {p.rx, 1};
            u.delta[PF_DIR_TX] = {p.tx, 1};
            d.rows.push_back(u);
        }
        std::vector<DrainRows> drains;
        for (auto& [name, d] : by_iface) drains.push_back(std::move(d));
        auto st = store_->commit_drain(drains);
        ASSERT_TRUE(st.ok()) << st.error().message();
    }

    std::string dir_, db_;
    std::unique_ptr<Store> store_;
};

}  // namespace pf::testing
