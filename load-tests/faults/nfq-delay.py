"""Holds packets an iptables NFQUEUE rule hands it for a fixed delay, then accepts them.

Used by the fault harness (load-tests/faults/links.ts) to add latency on a kernel without
netem. Raw netlink from the standard library only: no libnetfilter_queue needed.
  python3 nfq-delay.py QUEUE_NUM DELAY_MS
Prints "ready" once bound. Packets keep their order (one constant delay). The iptables
rule uses --queue-bypass, so if this process dies the packets pass undelayed.
"""
import collections
import select
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
MSG_PACKET, MSG_VERDICT, MSG_CONFIG = 0, 1, 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
CFG_CMD, CFG_PARAMS = 1, 2
CMD_BIND = 1
COPY_META = 1
ATTR_PACKET_HDR, ATTR_VERDICT_HDR = 1, 2
NF_ACCEPT = 1

queue = int(sys.argv[1])
delay = float(sys.argv[2]) / 1000.0
sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
sock.bind((0, 0))
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
seq = 0


def attr(kind, payload):
    length = 4 + len(payload)
    return struct.pack('=HH', length, kind) + payload + b'\0' * ((4 - length % 4) % 4)


def send(mtype, attrs, flags=NLM_F_REQUEST):
    global seq
    seq += 1
    body = struct.pack('=BBH', socket.AF_UNSPEC, 0, socket.htons(queue)) + b''.join(attrs)
    head = struct.pack('=IHHII', 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | mtype, flags, seq, 0)
    sock.sendto(head + body, (0, 0))


send(MSG_CONFIG, [attr(CFG_CMD, struct.pack('!BBH', CMD_BIND, 0, 0))], NLM_F_REQUEST | NLM_F_ACK)
send(MSG_CONFIG, [attr(CFG_PARAMS, struct.pack('!IB', 0, COPY_META))], NLM_F_REQUEST | NLM_F_ACK)
held = collections.deque()
print('ready', flush=True)
while True:
    timeout = max(0.0, held[0][0] - time.monotonic()) if held else None
    readable, _, _ = select.select([sock], [], [], timeout)
    if readable:
        data = sock.recv(1 << 17)
        off = 0
        while off + 16 <= len(data):
            length, kind = struct.unpack_from('=IH', data, off)
            if length < 16:
                break
            if kind == NLMSG_ERROR:
                err = struct.unpack_from('=i', data, off + 16)[0]
                if err != 0:
                    print('netlink error', err, file=sys.stderr, flush=True)
            elif kind == (NFNL_SUBSYS_QUEUE << 8) | MSG_PACKET:
                a, end = off + 20, off + length
                while a + 4 <= end:
                    alen, akind = struct.unpack_from('=HH', data, a)
                    if alen < 4:
                        break
                    if akind & 0x7fff == ATTR_PACKET_HDR:
                        held.append((time.monotonic() + delay, struct.unpack_from('!I', data, a + 4)[0]))
                        break
                    a += (alen + 3) & ~3
            off += (length + 3) & ~3
    now = time.monotonic()
    while held and held[0][0] <= now:
        _, packet_id = held.popleft()
        send(MSG_VERDICT, [attr(ATTR_VERDICT_HDR, struct.pack('!II', NF_ACCEPT, packet_id))])
