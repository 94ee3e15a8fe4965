import { describe, expect, it } from 'vitest';
import { classifyPacket, TcpdumpParser, type HandshakePacket, INITIATION_SIZE } from '../../harness/testbed/sniff.js';

// Captured with `tcpdump -n -tt -l -U -x udp` on this host (v6 ports swapped
// so it reads as a gateway's response).
const V4_INITIATION = `1795425132.879166 IP 127.0.0.1.40000 > 127.0.0.1.51820: UDP, length 148
\t0x0000:  4500 00b0 f70f 4000 4011 452b 7f00 0001
\t0x0010:  7f00 0001 9c40 ca6c 009c feaf 0100 0000
\t0x0020:  0000 0000 0000 0000 0000 0000 0000 0000
\t0x0090:  0000 0000 0000 0000 0000 0000 0000 0000
`;
const V6_RESPONSE = `1795425132.880279 IP6 ::1.51820 > ::1.45061: UDP, length 92
\t0x0000:  600f a770 0064 1140 0000 0000 0000 0000
\t0x0010:  0000 0000 0000 0001 0000 0000 0000 0000
\t0x0020:  0000 0000 0000 0001 ca6c b005 0064 0077
\t0x0030:  0200 0000 0000 0000 0000 0000 0000 0000
`;

function parseAll(text: string, chunk = text.length): HandshakePacket[] {
  const out: HandshakePacket[] = [];
  const parser = new TcpdumpParser(51820, (p) => out.push(p));
  for (let i = 0; i < text.length; i += chunk) parser.push(text.slice(i, i + chunk));
  return out;
}

describe('tcpdump handshake parser', () => {
  it('finds an IPv4 initiation and an IPv6 response with microsecond times', () => {
    const packets = parseAll(V4_INITIATION + V6_RESPONSE);
    expect(packets.map((p) => p.kind)).toEqual(['initiation', 'response']);
    expect(packets[0]!.at).toBeCloseTo(1795425132879.166, 3);
    expect(packets[1]!.at - packets[0]!.at).toBeCloseTo(1.113, 3);
    expect(packets[0]!.srcPort).toBe(40000);
  });

  it('reports a packet before the next header arrives, whatever the chunking', () => {
    for (const chunk of [1, 7, 64]) expect(parseAll(V4_INITIATION.split('\t0x0020')[0]!, chunk)).toHaveLength(1);
  });

  it('ignores other ports, sizes and types', () => {
    expect(parseAll(V4_INITIATION.replace('ca6c', 'ca6d'))).toEqual([]); // other port
    expect(parseAll(V4_INITIATION.replace('009c feaf 0100', '009c feaf 0400'))).toEqual([]); // type 4
    expect(parseAll(V4_INITIATION.replace('009c feaf', '009b feaf'))).toEqual([]); // 147 bytes
    expect(parseAll(V6_RESPONSE.replace('ca6c b005', 'b005 ca6c'))).toEqual([]); // type 2 towards the port
  });

  it('classifies from the first bytes only and asks for more when short', () => {
    const udp = [0x45, ...Array<number>(8).fill(0), 17, ...Array<number>(10).fill(0)];
    const ports = [0x9c, 0x40, 0xca, 0x6c, 0, INITIATION_SIZE + 8, 0, 0];
    expect(classifyPacket(udp, 51820, 0)).toBe('more');
    expect(classifyPacket([...udp, ...ports], 51820, 0)).toBe('more');
    expect(classifyPacket([...udp, ...ports, 1], 51820, 5)).toEqual({ kind: 'initiation', at: 5, srcPort: 40000, dstPort: 51820 });
    expect(classifyPacket([0x45, 0, 0, 0, 0, 0, 0, 0, 0, 6, ...Array<number>(10).fill(0)], 51820, 0)).toBeNull(); // TCP
  });
});
