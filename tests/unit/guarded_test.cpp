// A worker thread's exception ends neither the daemon nor the worker: the drain ticker goes
// on with the next tick, a guarded loop runs its body again.

#include "peakflow/common/guarded.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "peakflow/service/service.hpp"

namespace pf {
namespace {

TEST(Guarded, DrainTickerCarriesOnAfterATickThrows) {
    std::mutex mu;
    std::vector<int64_t> done;
    std::atomic<bool> threw{false};
    {
        DrainTicker t([&](int64_t now) {
            if (now == 1) {
                threw = true;
                throw std::runtime_error("bad answer");
            }
            std::lock_guard l(mu);
            done.push_back(now);
        });
        t.post(1);
        // Posts coalesce: the second goes in once the first has run (and thrown).
        for (int i = 0; i < 2000 && !threw; i++) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        ASSERT_TRUE(threw);
        t.post(2);
        t.stop();  // runs what is pending
    }
    EXPECT_EQ(done, std::vector<int64_t>{2});
}

TEST(Guarded, ALoopRunsAgainAfterAnExceptionAndEndsWhenItReturns) {
    int runs = 0;
    run_guarded(
        "test loop",
        [&] {
            if (++runs < 3) throw std::runtime_error("boom");
        },
        std::chrono::milliseconds(1));
    EXPECT_EQ(runs, 3);
    EXPECT_FALSE(run_once_guarded("test tick", [] { throw 7; }));
    EXPECT_TRUE(run_once_guarded("test tick", [] {}));
}

}  // namespace
}  // namespace pf
