// Sends complete IP packets (header included) through raw sockets, so a
// captured initiation can be re-injected with its original source.
#ifndef WGJIT_RAW_SEND_H
#define WGJIT_RAW_SEND_H

#include <cstddef>
#include <cstdint>

namespace wgjit {

// family is 4 or 6; dst is the packet's destination address, network order,
// dst_size bytes (4 or 16). Throws std::runtime_error with the errno text on
// failure.
void RawSend(int family, const uint8_t* packet, size_t size, const uint8_t* dst, size_t dst_size);

}  // namespace wgjit

#endif  // WGJIT_RAW_SEND_H
