/* The board's drivers, as the rest of the board folder sees them. */
#ifndef SATCHEL_BOARD_HW_H
#define SATCHEL_BOARD_HW_H

#include <stddef.h>
#include <stdint.h>

/* Interrupt controller. */
void board_irq_enable(int irq);
void board_irq_disable(int irq);

/* UART0 (console): blocking output, non-blocking input. */
void uart_init(void);
void uart_putc(char c);
void uart_write(const char *buf, size_t len);
/* A received byte (0-255), or -1 when none is waiting. */
int uart_getc(void);
void uart_irq_ack(void);

/* Time: microseconds since reset from the LAN9118's FREE_RUN counter
 * (SysTick drifts under QEMU), and the host's wall clock at reset. */
void clock_init(void);
uint64_t board_now_us(void);

/* Stack bytes ever used (the stack is painted at reset). */
uint32_t board_stack_high_water(void);
/* Heap: bytes handed out by _sbrk so far (the heap's high-water mark). */
size_t board_heap_high_water(void);

/* Sleep until an interrupt (UART input, a frame, the tick). */
void board_idle(void);

#endif
