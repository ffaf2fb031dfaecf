/* The LAN9118 driver as the lwIP port's link (lan9118.c). */
#ifndef SATCHEL_LAN9118_H
#define SATCHEL_LAN9118_H

#include <stdint.h>

#include "satchel/port_lwip.h"

/* The link to pass to satchel_port_lwip_start: DHCP on the LAN9118. */
const satchel_lwip_link *lan9118_link(void);
/* Frames received and sent, frames dropped on receive, and the IPv4
 * address (host byte order; 0 until DHCP answered). */
void lan9118_stats(uint32_t *in, uint32_t *out, uint32_t *errors, uint32_t *ip);

#endif
