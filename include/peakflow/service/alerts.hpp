#pragma once
// Alerts: what the daemon's watchers (push delivery, process watch, host health, flow
// export) tell the operator. Raisers call AlertSink::alert and never block on the network;
// the push pipeline's sink queues the alert in the durable outbox for every sink that takes
// alerts; without push configured, alerts go to the log only.

#include <cstdint>
#include <string>

namespace pf {

struct Alert {
    enum class Kind { Raised, Recovered };
    Kind kind = Kind::Raised;
    std::string source;  // who raises it: "push", "procwatch", "host", "export"
    std::string key;     // the episode, e.g. "runaway:1234", "sink:dingtalk", "spool"
    std::string title;   // one short line (chat titles; ServerChan keeps 32 characters)
    std::string text;    // markdown body
    int64_t time = 0;    // UTC seconds when it was detected
};

class AlertSink {
  public:
    virtual ~AlertSink() = default;
    // Thread-safe and quick: logs the alert and queues it; delivery happens elsewhere.
    virtual void alert(const Alert& a) = 0;
};

// Logs each alert (warn when raised, info when recovered) and nothing else.
class LogAlertSink : public AlertSink {
  public:
    void alert(const Alert& a) override;
};

}  // namespace pf
