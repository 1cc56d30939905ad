#include "peakflow/common/logging.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/daily_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <memory>

namespace pf {

void setup_logging(const std::string& name, const std::string& level) {
    auto logger = spdlog::get(name);
    if (!logger) logger = spdlog::stderr_color_mt(name);
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
    spdlog::set_level(spdlog::level::from_str(level));
}

Status add_log_files(const std::string& dir, const std::string& stem) {
    try {
        std::filesystem::create_directories(dir);
        auto daily = std::make_shared<spdlog::sinks::daily_file_sink_mt>(dir + "/" + stem + ".log", 0, 0);
        auto errors = std::make_shared<spdlog::sinks::basic_file_sink_mt>(dir + "/error.log");
        errors->set_level(spdlog::level::err);
        auto logger = spdlog::default_logger();
        logger->sinks().push_back(daily);
        logger->sinks().push_back(errors);
        spdlog::flush_every(std::chrono::seconds(5));
    } catch (const std::exception& e) {
        return Error("cannot write logs in " + dir + ": " + e.what());
    }
    return Ok{};
}

}  // namespace pf
