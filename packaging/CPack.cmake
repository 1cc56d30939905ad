# Install rules and CPack settings for the .deb and .rpm packages.
# Included from the root CMakeLists.txt after the peakflow-bpf target exists:
#   include(packaging/CPack.cmake)
# Build the binary, then: cd build && cpack -G "DEB;RPM"
#
# Layout (absolute paths are intended: these are system packages):
#   /usr/sbin/peakflow-bpf, peakflow-collector   (install(TARGETS) in the root CMakeLists.txt)
#   /lib/systemd/system/peakflow-bpf.service
#   /lib/systemd/system/peakflow-collector.service  (installed, not enabled: one host per fleet)
#   /etc/peakflow/collector.yaml                 collector config (conffile, 0600: push secrets)
#   /etc/init.d/peakflow-bpf                     SysV script (conffile)
#   /etc/peakflow/config.yaml                    example config (conffile, kept on upgrade, 0640: sink secrets)
#   /usr/share/peakflow-bpf/openwrt/peakflow-bpf OpenWrt procd script (not used on Debian)
#   /usr/share/man/man1/peakflow-bpf.1.gz, peakflow-collector.1.gz
#   /usr/share/bash-completion/completions/peakflow-bpf, peakflow-collector
#   /usr/share/doc/peakflow-bpf/{copyright,changelog.gz}
#   /var/lib/peakflow                            history database directory

set(_pf_pkg_dir ${CMAKE_CURRENT_LIST_DIR})
set(_pf_gen_dir ${CMAKE_BINARY_DIR}/packaging)
file(MAKE_DIRECTORY ${_pf_gen_dir})

# Directories the packages create get 0755, whatever the umask of the build.
set(CMAKE_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

find_program(PEAKFLOW_GZIP gzip REQUIRED)

# Debian changelog for a native package, dated with the commit the build is made from
# (reproducible), or a fixed date outside a git checkout.
execute_process(COMMAND git log -1 --format=%aD
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
  OUTPUT_VARIABLE _pf_changelog_date OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT _pf_changelog_date)
  set(_pf_changelog_date "Sat, 21 Nov 2026 00:00:00 +0000")
endif()
set(PEAKFLOW_PACKAGE_CONTACT "peakflow-bpf maintainers <maintainers@users.noreply.b-seed-84f9718e.example>"
    CACHE STRING "Maintainer of the .deb/.rpm packages")
file(WRITE ${_pf_gen_dir}/changelog
"peakflow-bpf (${PROJECT_VERSION}) unstable; urgency=medium

  * Release ${PROJECT_VERSION} (commit ${PEAKFLOW_GIT_COMMIT}).

 -- ${PEAKFLOW_PACKAGE_CONTACT}  ${_pf_changelog_date}
")

# gzip -9n: no name, no timestamp, so the packages are reproducible. Done at configure
# time so that `cpack` needs nothing but the built binary; an edited source re-runs it.
function(_pf_gzip src dst)
  execute_process(COMMAND ${PEAKFLOW_GZIP} -9n -c ${src}
    OUTPUT_FILE ${dst} RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "gzip ${src} failed")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${src})
endfunction()
_pf_gzip(${_pf_pkg_dir}/peakflow-bpf.1 ${_pf_gen_dir}/peakflow-bpf.1.gz)
_pf_gzip(${_pf_pkg_dir}/peakflow-collector.1 ${_pf_gen_dir}/peakflow-collector.1.gz)
_pf_gzip(${_pf_gen_dir}/changelog ${_pf_gen_dir}/changelog.gz)

# --- install rules (the binary itself is installed by the root CMakeLists.txt) ---------
install(FILES ${PROJECT_SOURCE_DIR}/packaging/systemd/peakflow-bpf.service
        DESTINATION /lib/systemd/system)
install(PROGRAMS ${_pf_pkg_dir}/sysvinit/peakflow-bpf DESTINATION /etc/init.d)
install(FILES ${PROJECT_SOURCE_DIR}/config/config.yaml DESTINATION /etc/peakflow
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/systemd/peakflow-collector.service
        DESTINATION /lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/config/collector.yaml DESTINATION /etc/peakflow
        PERMISSIONS OWNER_READ OWNER_WRITE)
install(PROGRAMS ${_pf_pkg_dir}/openwrt/peakflow-bpf DESTINATION share/peakflow-bpf/openwrt)
install(FILES ${_pf_gen_dir}/peakflow-bpf.1.gz ${_pf_gen_dir}/peakflow-collector.1.gz DESTINATION share/man/man1)
install(FILES ${_pf_pkg_dir}/bash-completion/peakflow-bpf ${_pf_pkg_dir}/bash-completion/peakflow-collector
        DESTINATION share/bash-completion/completions)
install(FILES ${_pf_pkg_dir}/debian/copyright ${_pf_gen_dir}/changelog.gz
        DESTINATION share/doc/peakflow-bpf)
install(DIRECTORY DESTINATION /var/lib/peakflow)
# With CPACK_STRIP_FILES (or `cmake --install --strip`) also drop the .comment and .note
# sections, as dh_strip does.
if(CMAKE_STRIP)
  install(CODE "
    if(CMAKE_INSTALL_DO_STRIP)
      execute_process(COMMAND \"${CMAKE_STRIP}\" --remove-section=.comment --remove-section=.note
        --strip-unneeded \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/sbin/peakflow-bpf\"
        \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/sbin/peakflow-collector\")
    endif()")
endif()

# --- CPack -------------------------------------------------------------------------------
set(CPACK_PACKAGE_NAME peakflow-bpf)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "peakflow-bpf")
set(CPACK_PACKAGE_CONTACT "${PEAKFLOW_PACKAGE_CONTACT}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "traffic accounting with XDP/TC counters and a billing history")
set(CPACK_PACKAGE_DESCRIPTION
"peakflow-bpf counts traffic in the kernel with eBPF: per interface, per peer
MAC, per direction and per flow. An XDP program counts what arrives and a TC
program counts what leaves; both only read packets and always pass them.
The maps are pinned, so counting goes on while the daemon restarts.
The daemon keeps a billing history in SQLite: 5-minute buckets, peak and
off-peak windows, local days, billing months and the 95th percentile,
which the report command shows.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_GENERATOR "DEB;RPM")
set(CPACK_SOURCE_GENERATOR "")
set(CPACK_WARN_ON_ABSOLUTE_INSTALL_DESTINATION OFF)

# Debian
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Shared libraries (libbpf1, libsqlite3-0, libargon2-1 for the collector's password hashes,
# libpq5 for its heartbeat probe of PostgreSQL databases, ...) come from dpkg-shlibdeps here
# and from rpm's automatic requires (AUTOREQ) below; tests/packaging/check_packages.sh
# checks that they are there.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Not a shared library, so dpkg-shlibdeps cannot see it: local days, peak windows and
# billing months need the IANA time zone database.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "tzdata")
# The maintainer scripts use invoke-rc.d --skip-systemd-native.
set(CPACK_DEBIAN_PACKAGE_PREDEPENDS "init-system-helpers (>= 1.54~)")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
configure_file(${_pf_pkg_dir}/debian/conffiles ${_pf_gen_dir}/debian/conffiles COPYONLY)
foreach(_s postinst prerm postrm)
  configure_file(${_pf_pkg_dir}/debian/${_s} ${_pf_gen_dir}/debian/${_s} COPYONLY)
  list(APPEND CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${_pf_gen_dir}/debian/${_s})
endforeach()
list(APPEND CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${_pf_gen_dir}/debian/conffiles)

# RPM
set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
set(CPACK_RPM_PACKAGE_LICENSE "GPL-2.0-only OR BSD-2-Clause")
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Daemons")
set(CPACK_RPM_PACKAGE_RELEASE 1)
set(CPACK_PACKAGE_RELOCATABLE OFF)
set(CPACK_RPM_PACKAGE_RELOCATABLE OFF)
set(CPACK_RPM_PACKAGE_AUTOREQ ON)
set(CPACK_RPM_PACKAGE_AUTOPROV ON)
set(CPACK_RPM_PACKAGE_REQUIRES "tzdata")
set(CPACK_RPM_USER_FILELIST
    "%config(noreplace) %attr(0640,root,root) /etc/peakflow/config.yaml"
    "%config(noreplace) %attr(0600,root,root) /etc/peakflow/collector.yaml"
    "%attr(0644,root,root) /lib/systemd/system/peakflow-collector.service"
    "%config(noreplace) /etc/init.d/peakflow-bpf"
    "%dir /var/lib/peakflow/"
    "%attr(0644,root,root) /lib/systemd/system/peakflow-bpf.service"
    "%doc /usr/share/doc/peakflow-bpf/changelog.gz"
    "%license /usr/share/doc/peakflow-bpf/copyright")
# CPack marks every file with an absolute destination %config unless it is listed above.
set(CPACK_RPM_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
execute_process(COMMAND git log -1 "--format=%ad" "--date=format:%a %b %d %Y"
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
  OUTPUT_VARIABLE _pf_rpm_date OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT _pf_rpm_date)
  set(_pf_rpm_date "Sat Nov 21 2026")
endif()
file(WRITE ${_pf_gen_dir}/rpm/changelog
"* ${_pf_rpm_date} ${PEAKFLOW_PACKAGE_CONTACT} - ${PROJECT_VERSION}-1
- Release ${PROJECT_VERSION} (commit ${PEAKFLOW_GIT_COMMIT}).
")
set(CPACK_RPM_CHANGELOG_FILE ${_pf_gen_dir}/rpm/changelog)
# Directories that belong to the base system (filesystem, systemd, man, bash-completion):
# the package must not own them (on merged-/usr systems /lib is a symlink).
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
    /lib /lib/systemd /lib/systemd/system /usr/sbin /usr/share/man /usr/share/man/man1
    /usr/share/bash-completion /usr/share/bash-completion/completions /var /var/lib
    /etc/init.d /etc/rc.d /etc/rc.d/init.d
    /var/lib/peakflow) # listed above with %dir
file(WRITE ${_pf_gen_dir}/rpm/post
"if [ -d /run/systemd/system ]; then systemctl --system daemon-reload >/dev/null 2>&1 || :; fi
")
file(WRITE ${_pf_gen_dir}/rpm/preun
"if [ \"$1\" = 0 ] && [ -d /run/systemd/system ]; then
  systemctl --no-reload disable --now peakflow-bpf.service peakflow-collector.service >/dev/null 2>&1 || :
fi
")
file(WRITE ${_pf_gen_dir}/rpm/postun
"if [ -d /run/systemd/system ]; then systemctl --system daemon-reload >/dev/null 2>&1 || :; fi
")
set(CPACK_RPM_POST_INSTALL_SCRIPT_FILE ${_pf_gen_dir}/rpm/post)
set(CPACK_RPM_PRE_UNINSTALL_SCRIPT_FILE ${_pf_gen_dir}/rpm/preun)
set(CPACK_RPM_POST_UNINSTALL_SCRIPT_FILE ${_pf_gen_dir}/rpm/postun)

include(CPack)
