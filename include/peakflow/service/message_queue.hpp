#pragma once
// The seam between what produces reports (schedules: daily, monthly, first start, the
// customer's hourly report) and what delivers them (the durable outbox and its sinks).

#include <cstdint>
#include <optional>
#include <string>

#include "peakflow/common/error.hpp"

namespace pf {

struct OutboundMessage {
    std::string sink;    // the configured sink's name; empty: every sink that takes this kind
                         // (its reports list; alert/recovery: sinks with alerts: true)
    std::string kind;    // daily | monthly | startup | hourly | verify | alert | recovery | test
    std::string period;  // what it covers: 2026-11-21, 2026-11, 2026-11-21T15, or an alert key
    std::string title;   // one line; chat sinks use it as the title
    std::string text;    // markdown for chat sinks (each sink cuts it to its size limit)
    std::string body;    // raw sinks (customer API, JSON webhook): the exact request body
    // The traffic the message reports, in bytes (the requirements' 推送数据): the sum of
    // v0..v11 of a customer hour, a daily or monthly report's total; none for alerts,
    // tests and free messages. Kept in the push history beside the request size.
    std::optional<int64_t> value{};
    // Non-empty: queued at most once per (sink, once), ever; a second enqueue with the same
    // key is Ok and adds nothing. Producers that record "queued" in a transaction of their
    // own (reports: kind and period) use it, so a failed record is retried without a
    // second message.
    std::string once{};
};

class MessageQueue {
  public:
    virtual ~MessageQueue() = default;
    // Durable when it returns Ok: the message survives a crash and is delivered later, in
    // order per sink. Thread-safe.
    virtual Status enqueue(const OutboundMessage& m) = 0;
};

}  // namespace pf
