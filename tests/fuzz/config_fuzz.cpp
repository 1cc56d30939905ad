// libFuzzer target: the agent's config loader (YAML -> Config), what `attach`, `config check`
// and every command read from /etc/peakflow/config.yaml. No input may crash it, throw out of
// it or hang it; a refused file gets one error naming the file; a file it takes prints
// (`config check`) as YAML that loads again into the same config (the same dump).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "peakflow/app/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    auto c = pf::parse_config(text, "fuzz.yaml");
    if (!c) {
        if (c.error().message().rfind("fuzz.yaml", 0) != 0) abort();
        return 0;
    }
    const std::string dump = pf::dump_config(*c);
    auto again = pf::parse_config(dump, "dump.yaml");
    if (!again) {
        fprintf(stderr, "the dump does not load: %s\n%s", again.error().message().c_str(), dump.c_str());
        abort();
    }
    if (pf::dump_config(*again) != dump) {
        fprintf(stderr, "the dump loads into another config:\n%s---\n%s", dump.c_str(),
                pf::dump_config(*again).c_str());
        abort();
    }
    return 0;
}
