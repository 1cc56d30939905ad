#pragma once
// One PostgreSQL connection through libpq for the heartbeat service (the database probe and
// `traffic_source: tables`): non-blocking, so that every step, connecting included, ends by
// a deadline and a slow or silent server never holds a probe round or a request thread.

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "peakflow/common/error.hpp"

namespace pf {

class PgSession {
  public:
    using Clock = std::chrono::steady_clock;
    using Row = std::vector<std::optional<std::string>>;  // NULL as nullopt

    // Connects (and authenticates) by `deadline`. Errors are libpq's on one line, or "no
    // connection within `budget`" ("300 ms (heartbeat.probe_timeout)"). Host names are
    // resolved before the clock can stop it: libpq resolves them blocking.
    static Result<PgSession> connect(const std::string& conninfo, Clock::time_point deadline,
                                     const std::string& budget);

    // One statement with text parameters ($1, $2, ...), its rows by `deadline`. `what` names
    // it in a timeout's error ("no answer to SELECT 1 within 300 ms (...)").
    Result<std::vector<Row>> query(const std::string& sql, const std::vector<std::string>& params,
                                   Clock::time_point deadline, const std::string& what, const std::string& budget);

    // Connected and not in the middle of a query (one a deadline cut off leaves it busy).
    bool idle() const { return PQstatus(c_.get()) == CONNECTION_OK && PQtransactionStatus(c_.get()) == PQTRANS_IDLE; }

  private:
    struct Finish {
        void operator()(PGconn* c) const { PQfinish(c); }
    };
    explicit PgSession(PGconn* c) : c_(c) {}
    std::unique_ptr<PGconn, Finish> c_;
};

// libpq's messages end in a newline and may span lines ("...failed: Connection refused\n\tIs
// the server running...?"): one line for a JSON field and a log, its lines as sentences.
std::string pg_one_line(const char* msg);

}  // namespace pf
