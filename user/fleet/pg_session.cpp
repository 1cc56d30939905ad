#include "pg_session.hpp"

#include <poll.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

namespace pf {

namespace {

// Waits until libpq's socket can be read (or written); false at the deadline.
bool wait_socket(PGconn* c, bool for_write, PgSession::Clock::time_point deadline) {
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - PgSession::Clock::now()).count();
        if (left <= 0) return false;
        pollfd p{PQsocket(c), static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
        const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
        if (r > 0) return true;
        if (r < 0 && errno != EINTR) return true;  // let libpq see the error
    }
}

}  // namespace

std::string pg_one_line(const char* msg) {
    std::string out;
    bool space = false, line_end = false;
    for (const char* p = msg ? msg : ""; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t' || *p == ' ') {
            space = !out.empty();
            line_end = line_end || *p == '\n';
            continue;
        }
        if (space && line_end && std::isalnum(static_cast<unsigned char>(out.back()))) out += '.';
        if (space) out += ' ';
        space = line_end = false;
        out += *p;
    }
    return out;
}

Result<PgSession> PgSession::connect(const std::string& conninfo, Clock::time_point deadline,
                                     const std::string& budget) {
    PgSession s(PQconnectStart(conninfo.c_str()));
    PGconn* c = s.c_.get();
    if (!c) return Error("libpq could not allocate a connection");
    if (PQstatus(c) == CONNECTION_BAD) return Error(pg_one_line(PQerrorMessage(c)));
    // libpq's protocol: act as if the first poll had asked to write.
    for (PostgresPollingStatusType st = PGRES_POLLING_WRITING; st != PGRES_POLLING_OK;) {
        if (st == PGRES_POLLING_FAILED) return Error(pg_one_line(PQerrorMessage(c)));
        if (!wait_socket(c, st == PGRES_POLLING_WRITING, deadline)) return Error("no connection within " + budget);
        st = PQconnectPoll(c);
    }
    if (PQsetnonblocking(c, 1) != 0) return Error(pg_one_line(PQerrorMessage(c)));
    return s;
}

Result<std::vector<PgSession::Row>> PgSession::query(const std::string& sql, const std::vector<std::string>& params,
                                                     Clock::time_point deadline, const std::string& what,
                                                     const std::string& budget) {
    PGconn* c = c_.get();
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    if (!PQsendQueryParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr,
                           0))
        return Error(pg_one_line(PQerrorMessage(c)));
    for (int f; (f = PQflush(c)) != 0;) {
        if (f < 0) return Error(pg_one_line(PQerrorMessage(c)));
        if (!wait_socket(c, true, deadline)) return Error(what + " not sent within " + budget);
    }
    std::string why;
    bool answered = false;
    std::vector<Row> rows;
    for (;;) {
        // PQgetResult would block while libpq waits for more of the answer.
        while (PQisBusy(c)) {
            if (!wait_socket(c, false, deadline)) return Error("no answer to " + what + " within " + budget);
            if (!PQconsumeInput(c)) return Error(pg_one_line(PQerrorMessage(c)));
        }
        PGresult* r = PQgetResult(c);
        if (!r) break;
        const ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            answered = true;
            for (int i = 0; i < PQntuples(r); i++) {
                Row row;
                for (int j = 0; j < PQnfields(r); j++)
                    row.push_back(PQgetisnull(r, i, j) ? std::nullopt
                                                       : std::optional<std::string>(PQgetvalue(r, i, j)));
                rows.push_back(std::move(row));
            }
        } else if (why.empty()) {
            why = pg_one_line(PQresultErrorMessage(r));
        }
        PQclear(r);
    }
    if (!why.empty()) return Error(why);
    if (!answered) return Error(what + " gave no result");
    return rows;
}

}  // namespace pf
