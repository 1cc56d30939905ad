#pragma once
// A fake root directory (proc, sys, etc, run, var) in a fresh temporary directory, removed
// afterwards: the host watch reads every file under an injectable root.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace pf::testing {

class FakeRoot {
  public:
    FakeRoot() {
        char tmpl[] = "/tmp/pf_fakeroot_XXXXXX";
        if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
        dir_ = tmpl;
    }
    ~FakeRoot() {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    FakeRoot(const FakeRoot&) = delete;
    FakeRoot& operator=(const FakeRoot&) = delete;

    const std::string& dir() const { return dir_; }
    std::string path(const std::string& rel) const { return dir_ + "/" + rel; }

    void write(const std::string& rel, const std::string& text) const {
        std::filesystem::path p = path(rel);
        std::filesystem::create_directories(p.parent_path());
        std::ofstream out(p, std::ios::binary | std::ios::trunc);
        out << text;
    }
    void remove(const std::string& rel) const {
        std::error_code ec;
        std::filesystem::remove_all(path(rel), ec);
    }

    // proc/PID/{stat,statm,status,cmdline,cgroup}: utime/stime/starttime in ticks, rss in pages.
    void process(int pid, const std::string& comm, uint64_t utime, uint64_t stime, uint64_t starttime,
                 uint64_t rss_pages, unsigned uid, const std::string& cgroup = "/user.slice") const {
        std::string d = "proc/" + std::to_string(pid) + "/";
        // Fields 3..24 of proc(5): state ppid pgrp session tty tpgid flags minflt cminflt majflt
        // cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime vsize rss.
        write(d + "stat", std::to_string(pid) + " (" + comm + ") R 1 " + std::to_string(pid) + " " +
                              std::to_string(pid) + " 0 -1 4194560 120 0 0 0 " + std::to_string(utime) + " " +
                              std::to_string(stime) + " 7 3 20 0 1 0 " + std::to_string(starttime) + " 10240000 " +
                              std::to_string(rss_pages) + " 18446744073709551615 1 1 0 0 0 0 0\n");
        write(d + "statm", "2500 " + std::to_string(rss_pages) + " 100 10 0 200 0\n");
        write(d + "status", "Name:\t" + comm + "\nUmask:\t0022\nState:\tR (running)\nTgid:\t" + std::to_string(pid) +
                                "\nUid:\t" + std::to_string(uid) + "\t" + std::to_string(uid) + "\t" +
                                std::to_string(uid) + "\t" + std::to_string(uid) + "\n");
        write(d + "cmdline", comm + std::string("\0--busy\0", 8));
        write(d + "cgroup", "0::" + cgroup + "\n");
    }

  private:
    std::string dir_;
};

}  // namespace pf::testing
