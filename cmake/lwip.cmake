# The "lwip" port: lwIP 2.1.3 (fetched by scripts/fetch-lwip into
# third_party/lwip-2.1.3*, never committed) + libslirp + the link emulator.
#
# Always defines satchel_link_emu (the link emulator core and the
# --link spec parser; no dependencies).  When the lwIP sources and libslirp
# (header + library; its pkg-config file wants glib's, which we do not
# need) are found, also defines
#   lwipcore           lwIP's core, IPv4, IPv6 and Ethernet code, our lwipopts.h
#   satchel_port_lwip  the port (include/satchel/port_lwip.h), the slirp glue
# and sets SATCHEL_HAVE_LWIP to ON; otherwise to OFF, with a message.
# Include it after satchel_core is defined.

get_filename_component(SATCHEL_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(SATCHEL_HAVE_LWIP OFF)

add_library(satchel_link_emu STATIC ${SATCHEL_ROOT}/boards/host/slirp_link.c)
target_compile_definitions(satchel_link_emu PRIVATE SATCHEL_LINK_EMU_ONLY)
target_include_directories(satchel_link_emu PUBLIC
  ${SATCHEL_ROOT}/include ${SATCHEL_ROOT}/boards/host)

file(GLOB _satchel_lwip_dirs LIST_DIRECTORIES true
  "${SATCHEL_ROOT}/third_party/lwip-2.1.3*")
set(LWIP_DIR "")
foreach(_d ${_satchel_lwip_dirs})
  if(IS_DIRECTORY "${_d}/src/core" AND NOT LWIP_DIR)
    set(LWIP_DIR "${_d}")
  endif()
endforeach()

find_path(SLIRP_INCLUDE_DIR libslirp.h PATH_SUFFIXES slirp)
find_library(SLIRP_LIBRARY slirp)

if(NOT LWIP_DIR)
  message(STATUS "lwip port: no third_party/lwip-2.1.3* (run scripts/fetch-lwip)")
elseif(NOT SLIRP_INCLUDE_DIR OR NOT SLIRP_LIBRARY)
  message(STATUS "lwip port: libslirp not found (apt-get install libslirp-dev)")
else()
  message(STATUS "lwip port: lwIP in ${LWIP_DIR}, slirp ${SLIRP_LIBRARY}")
  set(SATCHEL_HAVE_LWIP ON)

  set(_lw ${LWIP_DIR}/src)
  set(_lwip_srcs
    ${_lw}/core/init.c ${_lw}/core/def.c ${_lw}/core/inet_chksum.c
    ${_lw}/core/ip.c ${_lw}/core/mem.c ${_lw}/core/memp.c
    ${_lw}/core/netif.c ${_lw}/core/pbuf.c ${_lw}/core/stats.c
    ${_lw}/core/sys.c ${_lw}/core/tcp.c ${_lw}/core/tcp_in.c
    ${_lw}/core/tcp_out.c ${_lw}/core/timeouts.c
    ${_lw}/core/ipv4/etharp.c ${_lw}/core/ipv4/icmp.c ${_lw}/core/ipv4/ip4.c
    ${_lw}/core/ipv4/ip4_addr.c ${_lw}/core/ipv4/ip4_frag.c
    ${_lw}/core/ipv6/ethip6.c ${_lw}/core/ipv6/icmp6.c ${_lw}/core/ipv6/inet6.c
    ${_lw}/core/ipv6/ip6.c ${_lw}/core/ipv6/ip6_addr.c ${_lw}/core/ipv6/ip6_frag.c
    ${_lw}/core/ipv6/mld6.c ${_lw}/core/ipv6/nd6.c
    ${_lw}/netif/ethernet.c)
  # Third-party code: build it, do not lint it (the project adds -Werror).
  # Our sys_arch.c, in the same library (lwIP calls sys_now), is linted.
  set_source_files_properties(${_lwip_srcs} PROPERTIES COMPILE_OPTIONS "-w")
  add_library(lwipcore STATIC ${_lwip_srcs} ${SATCHEL_ROOT}/port/lwip/sys_arch.c)
  # Our lwipopts.h and arch/cc.h come first; lwIP's headers are "system"
  # headers for everyone else (they do not pass our -Wpedantic etc.).
  target_include_directories(lwipcore SYSTEM PUBLIC
    ${SATCHEL_ROOT}/port/lwip ${_lw}/include)
  if(SATCHEL_SANITIZE)
    target_compile_options(lwipcore PRIVATE -fno-sanitize=alignment)
  endif()

  add_library(satchel_port_lwip STATIC
    ${SATCHEL_ROOT}/port/lwip/lwip_port.c
    ${SATCHEL_ROOT}/boards/host/slirp_link.c)
  target_compile_definitions(satchel_port_lwip PRIVATE SATCHEL_LINK_GLUE_ONLY)
  target_include_directories(satchel_port_lwip PUBLIC ${SATCHEL_ROOT}/include
    PRIVATE ${SATCHEL_ROOT}/port/lwip ${SATCHEL_ROOT}/boards/host)
  target_include_directories(satchel_port_lwip SYSTEM PRIVATE ${SLIRP_INCLUDE_DIR})
  target_link_libraries(satchel_port_lwip PUBLIC satchel_link_emu lwipcore
    ${SLIRP_LIBRARY})
endif()
