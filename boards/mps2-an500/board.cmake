# MPS2 AN500 (Cortex-M7): the AN386's drivers with this folder's board.h
# (the LAN9118 at 0xA0000000, PSRAM at 0x60000000).
include(${CMAKE_CURRENT_LIST_DIR}/../mps2-an386/board.cmake)
set(SATCHEL_BOARD_IMAGE satchel-fw-an500)
set(SATCHEL_BOARD_CPU -mcpu=cortex-m7 -mthumb -mfloat-abi=soft)
set(SATCHEL_BOARD_INCLUDE ${CMAKE_CURRENT_LIST_DIR} ${SATCHEL_BOARD_INCLUDE})
