#include "peakflow/app/cli.hpp"

int main(int argc, char** argv) {
    return pf::run_cli(argc, argv);
}
