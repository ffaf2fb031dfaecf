# The "lwip" port: lwIP 2.1.3 (fetched by scripts/fetch-lwip into
# third_party/lwip-2.1.3*, never committed) and the shared TCP glue in
# port/lwip.  Nothing here knows about a board or the host: the link below
# lwIP (libslirp on the host, an Ethernet driver on a board) is linked by
# whoever builds the program.
#
# When the lwIP sources are found, defines
#   satchel_port_lwip  lwIP's core, IPv4 (with DHCP), IPv6 and Ethernet
#                      code, port/lwip's lwipopts.h, arch/cc.h and the glue
#                      (include/satchel/port_lwip.h)
# and sets SATCHEL_LWIP_FOUND to ON; otherwise to OFF, with a message.  A
# board's lwIP options come from its satchel_board_opts.h: add its folder
# to satchel_port_lwip's include path and define SATCHEL_BOARD_OPTS.
# Include it after satchel_core is defined.

get_filename_component(SATCHEL_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(SATCHEL_LWIP_FOUND OFF)

file(GLOB _satchel_lwip_dirs LIST_DIRECTORIES true
  "${SATCHEL_ROOT}/third_party/lwip-2.1.3*")
set(LWIP_DIR "")
foreach(_d ${_satchel_lwip_dirs})
  if(IS_DIRECTORY "${_d}/src/core" AND NOT LWIP_DIR)
    set(LWIP_DIR "${_d}")
  endif()
endforeach()

if(NOT LWIP_DIR)
  message(STATUS "lwip port: no third_party/lwip-2.1.3* (run scripts/fetch-lwip)")
else()
  message(STATUS "lwip port: lwIP in ${LWIP_DIR}")
  set(SATCHEL_LWIP_FOUND ON)

  set(_lw ${LWIP_DIR}/src)
  set(_lwip_srcs
    ${_lw}/core/init.c ${_lw}/core/def.c ${_lw}/core/inet_chksum.c
    ${_lw}/core/ip.c ${_lw}/core/mem.c ${_lw}/core/memp.c
    ${_lw}/core/netif.c ${_lw}/core/pbuf.c ${_lw}/core/stats.c
    ${_lw}/core/sys.c ${_lw}/core/tcp.c ${_lw}/core/tcp_in.c
    ${_lw}/core/tcp_out.c ${_lw}/core/timeouts.c ${_lw}/core/udp.c
    ${_lw}/core/ipv4/dhcp.c ${_lw}/core/ipv4/etharp.c ${_lw}/core/ipv4/icmp.c
    ${_lw}/core/ipv4/ip4.c
    ${_lw}/core/ipv4/ip4_addr.c ${_lw}/core/ipv4/ip4_frag.c
    ${_lw}/core/ipv6/ethip6.c ${_lw}/core/ipv6/icmp6.c ${_lw}/core/ipv6/inet6.c
    ${_lw}/core/ipv6/ip6.c ${_lw}/core/ipv6/ip6_addr.c ${_lw}/core/ipv6/ip6_frag.c
    ${_lw}/core/ipv6/mld6.c ${_lw}/core/ipv6/nd6.c
    ${_lw}/netif/ethernet.c)
  # Third-party code: build it, do not lint it (the project adds -Werror).
  # Our glue in the same library (lwIP calls its sys_now) is linted.
  set_source_files_properties(${_lwip_srcs} PROPERTIES COMPILE_OPTIONS "-w")
  add_library(satchel_port_lwip STATIC ${_lwip_srcs}
    ${SATCHEL_ROOT}/port/lwip/lwip_port.c ${SATCHEL_ROOT}/port/lwip/sys_arch.c)
  target_include_directories(satchel_port_lwip PUBLIC ${SATCHEL_ROOT}/include)
  # Our lwipopts.h and arch/cc.h come first; lwIP's headers are "system"
  # headers for everyone else (they do not pass our -Wpedantic etc.).
  target_include_directories(satchel_port_lwip SYSTEM PUBLIC
    ${SATCHEL_ROOT}/port/lwip ${_lw}/include)
  if(SATCHEL_SANITIZE)
    target_compile_options(satchel_port_lwip PRIVATE -fno-sanitize=alignment)
  endif()
endif()
