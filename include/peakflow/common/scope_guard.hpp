#pragma once
// Runs an undo step when the scope is left, unless dismissed first: a function that makes
// several changes arms one guard per change as it goes, and dismisses them all once
// nothing can fail any more. Guards undo in the reverse order of the changes.

#include <utility>

namespace pf {

template <typename F>
class [[nodiscard]] ScopeGuard {
  public:
    // armed false: nothing to undo (the step found the change already made, say).
    explicit ScopeGuard(F undo, bool armed = true) : undo_(std::move(undo)), armed_(armed) {}
    ScopeGuard(const ScopeGuard&) = delete;
    ScopeGuard& operator=(const ScopeGuard&) = delete;
    ScopeGuard(ScopeGuard&& o) noexcept : undo_(std::move(o.undo_)), armed_(std::exchange(o.armed_, false)) {}
    ScopeGuard& operator=(ScopeGuard&&) = delete;
    ~ScopeGuard() {
        if (armed_) undo_();
    }

    void dismiss() { armed_ = false; }

  private:
    F undo_;
    bool armed_;
};

}  // namespace pf
