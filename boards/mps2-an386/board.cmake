# MPS2 AN386 (Cortex-M4): what cmake/firmware.cmake needs to build an image.
set(SATCHEL_BOARD_IMAGE satchel-fw)
set(SATCHEL_BOARD_CPU -mcpu=cortex-m4 -mthumb -mfloat-abi=soft)
# Include folders, the board's own first (board.h, satchel_board_opts.h,
# mbedtls_config.h), then the shared drivers and the POSIX shim headers.
set(SATCHEL_BOARD_INCLUDE ${CMAKE_CURRENT_LIST_DIR}
  ${CMAKE_CURRENT_LIST_DIR}/posix)
set(SATCHEL_BOARD_LD ${CMAKE_CURRENT_LIST_DIR}/mps2.ld)
set(SATCHEL_BOARD_SRCS
  ${CMAKE_CURRENT_LIST_DIR}/startup.c ${CMAKE_CURRENT_LIST_DIR}/uart.c
  ${CMAKE_CURRENT_LIST_DIR}/lan9118.c ${CMAKE_CURRENT_LIST_DIR}/semihost.c
  ${CMAKE_CURRENT_LIST_DIR}/storage_semihost.c
  ${CMAKE_CURRENT_LIST_DIR}/posix_shim.c ${CMAKE_CURRENT_LIST_DIR}/syscalls.c
  ${CMAKE_CURRENT_LIST_DIR}/main.c)
