#pragma once
// The top of every worker thread. An exception that escapes a thread's function calls
// std::terminate and ends the daemon (and would again after every restart, on the same bad
// input); run_guarded logs it and runs the body again after a pause, so the daemon keeps
// counting and the service keeps going. The body must return normally when asked to stop.

#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <string>
#include <thread>

namespace pf {

// One unit of work (a drain tick): an exception is logged and the work is given up; the
// next tick tries again with fresh input. True when it returned normally.
template <typename Body>
bool run_once_guarded(const std::string& what, Body&& body) {
    try {
        body();
        return true;
    } catch (const std::exception& e) {
        spdlog::error("{}: {} (carrying on)", what, e.what());
    } catch (...) {
        spdlog::error("{}: unknown exception (carrying on)", what);
    }
    return false;
}

template <typename Body>
void run_guarded(const std::string& what, Body&& body, std::chrono::milliseconds pause = std::chrono::seconds(1)) {
    for (;;) {
        try {
            body();
            return;
        } catch (const std::exception& e) {
            spdlog::error("{}: {} (carrying on)", what, e.what());
        } catch (...) {
            spdlog::error("{}: unknown exception (carrying on)", what);
        }
        std::this_thread::sleep_for(pause);
    }
}

}  // namespace pf
