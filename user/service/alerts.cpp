#include "peakflow/service/alerts.hpp"

#include <spdlog/spdlog.h>

namespace pf {

void LogAlertSink::alert(const Alert& a) {
    if (a.kind == Alert::Kind::Raised)
        spdlog::warn("alert [{}] {}: {}", a.source, a.key, a.title);
    else
        spdlog::info("recovered [{}] {}: {}", a.source, a.key, a.title);
}

}  // namespace pf
