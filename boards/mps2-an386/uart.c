/* CMSDK APB UART0: the console.  Output is blocking; input is polled by
 * the main loop, with the RX interrupt only waking the idle WFI.  QEMU's
 * model holds one received byte and back-pressures the host side, so no
 * input is lost while a command runs. */
#include <stdint.h>

#include <board.h>
#include "board_hw.h"

#define UART ((volatile uint32_t *)BOARD_UART0_BASE)
#define DATA 0
#define STATE 1 /* bit 0 TX full, bit 1 RX full */
#define CTRL 2  /* bit 0 TX enable, bit 1 RX enable, bit 3 RX interrupt */
#define INTSTATUS 3
#define BAUDDIV 4

void uart_init(void)
{
    UART[BAUDDIV] = 16;
    UART[CTRL] = 1u | 2u | 8u;
    board_irq_enable(BOARD_UART0_RX_IRQ);
}

void uart_putc(char c)
{
    while (UART[STATE] & 1u)
        ;
    UART[DATA] = (uint8_t)c;
}

void uart_write(const char *buf, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        if (buf[i] == '\n')
            uart_putc('\r');
        uart_putc(buf[i]);
    }
}

int uart_getc(void)
{
    if (!(UART[STATE] & 2u))
        return -1;
    return (int)(UART[DATA] & 0xffu);
}

void uart_irq_ack(void)
{
    UART[INTSTATUS] = 2u;
}
