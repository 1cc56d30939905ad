#pragma once
// `peakflow-collector`: the fleet collector's command line (serve, config check, token,
// agents, report, alerts, history, user).

namespace pf {

int run_collector_cli(int argc, char** argv);

}  // namespace pf
