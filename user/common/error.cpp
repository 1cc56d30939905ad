#include "peakflow/common/error.hpp"

#include <cstring>

namespace pf {

std::string Error::message() const {
    std::string m = op;
    if (!object.empty()) m += " " + object;
    if (err != 0) m += ": " + std::string(std::strerror(err));
    if (!hint.empty()) m += " (" + hint + ")";
    return m;
}

}  // namespace pf
