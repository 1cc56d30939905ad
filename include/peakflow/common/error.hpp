#pragma once
// Recoverable failures travel as values: Result<T> holds either a T or an Error naming
// the operation, the object it was done to and the errno. Fatal start-up errors are thrown
// as FatalError and printed by main as one line.

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace pf {

struct Error {
    Error() = default;
    explicit Error(std::string op_, std::string object_ = {}, int err_ = 0, std::string hint_ = {})
        : op(std::move(op_)), object(std::move(object_)), err(err_), hint(std::move(hint_)) {}

    std::string op;      // what we tried: "attach XDP", "open pinned map"
    std::string object;  // what to: "eth0", "/sys/fs/bpf/peakflow/eth0/pf_mac"
    int err = 0;         // errno, 0 if not a system error
    std::string hint;    // what the user can do about it, may be empty

    std::string message() const;
};

class FatalError : public std::runtime_error {
  public:
    explicit FatalError(const std::string& msg) : std::runtime_error(msg) {}
    explicit FatalError(const Error& e) : std::runtime_error(e.message()) {}
};

template <typename T>
class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
    Result(Error e) : v_(std::move(e)) {}      // NOLINT
    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() { return std::get<0>(v_); }
    const T& value() const { return std::get<0>(v_); }
    T& operator*() { return value(); }
    T* operator->() { return &value(); }
    const Error& error() const { return std::get<1>(v_); }
    // The value, or throw the error as fatal.
    T take() {
        if (!ok()) throw FatalError(error());
        return std::move(value());
    }

  private:
    std::variant<T, Error> v_;
};

struct Ok {};
using Status = Result<Ok>;

}  // namespace pf
