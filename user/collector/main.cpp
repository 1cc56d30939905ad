#include "peakflow/collector/collector_cli.hpp"

int main(int argc, char** argv) {
    return pf::run_collector_cli(argc, argv);
}
