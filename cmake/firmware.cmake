# A firmware image for one board (-DSATCHEL_BOARD=mps2-an386, with the
# cross toolchain cmake/arm-none-eabi.cmake; scripts/firmware build).
# Builds core/, firmware/, the TLS module, the lwIP port, mbedTLS 2.28 and
# LMDB 0.9.24 (sources from scripts/fetch-firmware in third_party/) with
# the board's options, and links boards/<board>/ into <image>.elf with a
# linker map.

get_filename_component(SATCHEL_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(_board_dir ${SATCHEL_ROOT}/boards/${SATCHEL_BOARD})
if(NOT EXISTS ${_board_dir}/board.cmake)
  message(FATAL_ERROR "no board ${SATCHEL_BOARD} (boards/${SATCHEL_BOARD}/board.cmake)")
endif()
include(${_board_dir}/board.cmake)

file(GLOB _mbedtls_dir LIST_DIRECTORIES true "${SATCHEL_ROOT}/third_party/mbedtls-2.28.3*")
file(GLOB _lmdb_dir LIST_DIRECTORIES true "${SATCHEL_ROOT}/third_party/lmdb-0.9.24*")
if(NOT _mbedtls_dir OR NOT _lmdb_dir)
  message(FATAL_ERROR "no mbedTLS or LMDB sources in third_party/ (run scripts/fetch-firmware)")
endif()
list(GET _mbedtls_dir 0 _mbedtls_dir)
list(GET _lmdb_dir 0 _lmdb_dir)
set(_lmdb_src ${_lmdb_dir}/libraries/liblmdb)

add_compile_options(${SATCHEL_BOARD_CPU} -ffunction-sections -fdata-sections)
add_link_options(${SATCHEL_BOARD_CPU})
add_compile_definitions(SATCHEL_BOARD_OPTS MBEDTLS_CONFIG_FILE="mbedtls_config.h")
include_directories(${SATCHEL_BOARD_INCLUDE})

# Third-party code: built, not linted (the project adds -Werror).
file(GLOB _mbedtls_srcs ${_mbedtls_dir}/library/*.c)
set_source_files_properties(${_mbedtls_srcs} PROPERTIES COMPILE_OPTIONS "-w")
add_library(fw_mbedtls STATIC ${_mbedtls_srcs})
target_include_directories(fw_mbedtls SYSTEM PUBLIC ${_mbedtls_dir}/include)

# LMDB on the board's POSIX shim; MDB_IDL_LOGN needs the project's patch
# (patches/lmdb-0.9.24-idl-logn.patch, applied by scripts/fetch-firmware).
add_library(fw_lmdb STATIC ${_lmdb_src}/mdb.c ${_lmdb_src}/midl.c)
target_compile_options(fw_lmdb PRIVATE -w -include lmdb_board.h)
target_compile_definitions(fw_lmdb PRIVATE MDB_IDL_LOGN=9 MDB_USE_ROBUST=0)
target_include_directories(fw_lmdb SYSTEM PUBLIC ${_lmdb_src})

file(GLOB _core_srcs ${SATCHEL_ROOT}/core/*.c)
add_library(satchel_core STATIC ${_core_srcs})
target_include_directories(satchel_core PUBLIC ${SATCHEL_ROOT}/include)
target_link_libraries(satchel_core PUBLIC fw_lmdb)

add_library(satchel_tls STATIC ${SATCHEL_ROOT}/port/tls_mbedtls.c)
target_link_libraries(satchel_tls PUBLIC satchel_core fw_mbedtls)

file(GLOB _fw_srcs ${SATCHEL_ROOT}/firmware/*.c)
add_library(satchel_firmware STATIC ${_fw_srcs})
target_include_directories(satchel_firmware PUBLIC ${SATCHEL_ROOT}/firmware)
target_link_libraries(satchel_firmware PUBLIC satchel_core satchel_tls)

include(${SATCHEL_ROOT}/cmake/lwip.cmake)
if(NOT SATCHEL_LWIP_FOUND)
  message(FATAL_ERROR "no lwIP sources (run scripts/fetch-firmware)")
endif()

add_executable(${SATCHEL_BOARD_IMAGE}.elf ${SATCHEL_BOARD_SRCS})
target_link_libraries(${SATCHEL_BOARD_IMAGE}.elf PRIVATE satchel_firmware
  satchel_port_lwip satchel_tls satchel_core fw_lmdb fw_mbedtls)
target_link_options(${SATCHEL_BOARD_IMAGE}.elf PRIVATE
  -T${SATCHEL_BOARD_LD} --specs=nosys.specs -Wl,--gc-sections
  -Wl,-Map=${CMAKE_BINARY_DIR}/${SATCHEL_BOARD_IMAGE}.map)
set_target_properties(${SATCHEL_BOARD_IMAGE}.elf PROPERTIES LINK_DEPENDS ${SATCHEL_BOARD_LD})
add_custom_command(TARGET ${SATCHEL_BOARD_IMAGE}.elf POST_BUILD
  COMMAND arm-none-eabi-size ${SATCHEL_BOARD_IMAGE}.elf)
