#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""
End-to-end tests of the kvmguard CLI against a fake kernel.

The fake is a userspace generic netlink socket that implements the ABI of
uapi/linux/kvmguard.h (enum values are read from that header): strict
per-command attribute checks with extended-ACK messages, multi-part dumps,
NLM_F_DUMP_INTR injection, and unsolicited events. The CLI is pointed at it
with KVMGUARD_TEST_PEER=PORT:FAMILY (skipping the family lookup), so this
tests the CLI's own netlink code, not the kernel module. Needs the right to
send netlink unicasts to a userspace port (root or CAP_NET_ADMIN).

Usage: fakekernel.py ./kvmguard        (VALGRIND=0 to skip valgrind)
"""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(HERE, "..", "..", "uapi", "linux", "kvmguard.h")

# What dump adds for the fake VM 5, which `vm set` moved: comments, since VM
# ids change on a module reload.
VM_LINES = ("# By VM id, which a module reload changes: not applied; run\n"
            "# them again with the ids of `kvmguard vm list`.\n"
            "# VM 5: pid 1005, comm qemu-system-x86, cgroup "
            "/machine.slice/machine-qemu-5.scope\n"
            "# vm set 5 policy web\n")

NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 1, 2, 4
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200
NLMSGERR_ATTR_MSG = 1
SOL_NETLINK, NETLINK_EXT_ACK = 270, 11
FAMILY = 0x7a0
GENL_ID_CTRL, CTRL_CMD_NEWFAMILY, CTRL_CMD_GETFAMILY = 0x10, 1, 3
CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 1, 2

E = {}


def load_enums():
    text = open(HEADER).read()
    for name, body in re.findall(r"enum (\w+) \{(.*?)\};", text, re.S):
        val = -1
        for entry in body.split(","):
            entry = re.sub(r"/\*.*?\*/", "", entry, flags=re.S).strip()
            if not entry:
                continue
            m = re.match(r"(\w+)\s*(?:=\s*(.+))?$", entry)
            key, expr = m.group(1), m.group(2)
            val = eval(expr.replace("U", "")) if expr else val + 1
            E[key] = val


load_enums()
A = {k[len("KVMGUARD_A_"):]: v for k, v in E.items()
     if k.startswith("KVMGUARD_A_")}
C = {k[len("KVMGUARD_CMD_"):]: v for k, v in E.items()
     if k.startswith("KVMGUARD_CMD_")}

U8, U16, U32, U64, STR, BIN = "u8", "u16", "u32", "u64", "str", "bin"
TYPES = {
    "VM_ID": U64, "VM_PID": U32, "VM_COMM": STR, "VM_CGROUP": STR,
    "VM_CREATED_NS": U64, "VM_VCPUS": U32, "VM_MEMSLOTS": U32,
    "VM_MEM_BYTES": U64, "VM_FLAGS": U32, "VM_BOUND_BY": U8,
    "POLICY_NAME": STR, "POLICY_MODE": U8, "POLICY_DOMAIN": STR,
    "POLICY_VMS": U32, "POLICY_BINDINGS": U32, "BIND_TYPE": U8,
    "BIND_CGROUP": STR, "BIND_PID": U32, "EVENT_TYPE": U8,
    "EVENT_TIME_NS": U64, "POLICY_HC_RESTRICT": U8, "POLICY_HC_ALLOW": U64,
    "POLICY_HYPERV": U8, "VM_HV_ALLOWED": U64, "VM_HV_DENIED": U64,
    "EVENT_HC_NR": U64, "EVENT_ACTION": U8, "EVENT_COUNT": U64,
    "HC_NR": U32, "HC_ALLOWED": U64, "HC_DENIED": U64,
    "POLICY_MEM_MAX": U64, "POLICY_MEM_SHARED": U8, "POLICY_MEM_KSM": U8,
    "POLICY_MEM_DIRTY_MAX": U64, "VM_MEM_SHARED_BYTES": U64,
    "VM_MEM_DIRTY_BYTES": U64, "VM_MEM_LIMIT_DENIED": U64,
    "VM_MEM_SHARED_DENIED": U64, "VM_MEM_KSM_DENIED": U64,
    "VM_MEM_DIRTY_DENIED": U64, "EVENT_MEM_RULE": U8, "EVENT_MEM_SLOT": U32,
    "EVENT_MEM_BYTES": U64,
    "POLICY_NET_TAG": U16, "POLICY_NET_TRUNK": BIN, "POLICY_NET_ISOLATE": U8,
    "NET_IFINDEX": U32, "NET_IFNAME": STR, "NET_BOUND_BY": U8,
    "NET_TAGGED": U64, "NET_FORWARDED": U64, "NET_DELIVERED": U64,
    "NET_TAG_DENIED": U64, "NET_SEGMENT_DENIED": U64,
    "NET_ISOLATE_DENIED": U64, "EVENT_NET_RULE": U8, "EVENT_NET_DIR": U8,
    "EVENT_NET_VID": U16,
    "NET_GUARD": U8, "NET_GUARD_PORTS": U32, "NET_GUARD_DROPPED": U64,
    "NET_BRIDGE": STR,
    "VM_MEM_KSM_MADVISE": U64, "EVENT_VMM_DEFAULT": U8, "EVENT_HV_CODE": U16,
}
MEM_RULES = ("POLICY_MEM_MAX", "POLICY_MEM_SHARED", "POLICY_MEM_KSM",
             "POLICY_MEM_DIRTY_MAX")
NET_RULES = ("POLICY_NET_TAG", "POLICY_NET_TRUNK", "POLICY_NET_ISOLATE")
RULES = ("POLICY_HC_RESTRICT", "POLICY_HC_ALLOW", "POLICY_HYPERV") + \
    MEM_RULES + NET_RULES
TRUNK_BYTES = E["KVMGUARD_NET_TRUNK_BYTES"] if "KVMGUARD_NET_TRUNK_BYTES" \
    in E else 512
CGROUP_MAX = int(re.search(r"#define KVMGUARD_CGROUP_MAX\s+(\d+)",
                           open(HEADER).read()).group(1))
NO_TRUNK = bytes(TRUNK_BYTES)
# policy state keys of the network rules, their attributes and defaults
NET_KEYS = (("net_tag", "POLICY_NET_TAG", 0),
            ("net_trunk", "POLICY_NET_TRUNK", NO_TRUNK),
            ("net_isolate", "POLICY_NET_ISOLATE", 0))
NET_DEV_COUNTERS = ("NET_TAGGED", "NET_FORWARDED", "NET_DELIVERED",
                    "NET_TAG_DENIED", "NET_SEGMENT_DENIED",
                    "NET_ISOLATE_DENIED")


def trunk(*vids):
    """The POLICY_NET_TRUNK bitmap of VIDs and (first, last) ranges."""
    b = bytearray(TRUNK_BYTES)
    for v in vids:
        first, last = v if isinstance(v, tuple) else (v, v)
        for x in range(first, last + 1):
            b[x // 8] |= 1 << (x % 8)
    return bytes(b)
UNLIMITED = (1 << 64) - 1
# policy state keys of the memory rules, their attributes and defaults
MEM_KEYS = (("mem_max", "POLICY_MEM_MAX", UNLIMITED),
            ("mem_shared", "POLICY_MEM_SHARED", 0),
            ("mem_ksm", "POLICY_MEM_KSM", 0),
            ("mem_dirty_max", "POLICY_MEM_DIRTY_MAX", UNLIMITED))
VM_MEM_ATTRS = ("VM_MEM_SHARED_BYTES", "VM_MEM_DIRTY_BYTES",
                "VM_MEM_LIMIT_DENIED", "VM_MEM_SHARED_DENIED",
                "VM_MEM_KSM_DENIED", "VM_MEM_DIRTY_DENIED")
ANAME = {v: k for k, v in A.items()}


def put_attr(t, payload):
    hdr = struct.pack("=HH", 4 + len(payload), t)
    pad = b"\0" * ((4 - len(payload) % 4) % 4)
    return hdr + payload + pad


def enc(name, value):
    t = TYPES[name]
    if t == STR:
        raw = value if isinstance(value, bytes) else value.encode()
        return put_attr(A[name], raw + b"\0")
    if t == BIN:
        return put_attr(A[name], value)
    fmt = {U8: "=B", U16: "=H", U32: "=I", U64: "=Q"}[t]
    return put_attr(A[name], struct.pack(fmt, value))


def parse_attrs(data):
    out = {}
    off = 0
    while off + 4 <= len(data):
        ln, t = struct.unpack_from("=HH", data, off)
        if ln < 4 or off + ln > len(data):
            raise ValueError("bad attribute length")
        payload = data[off + 4:off + ln]
        name = ANAME.get(t & 0x3fff, "type%d" % t)
        out[name] = payload
        off += (ln + 3) & ~3
    return out


class Refuse(Exception):
    def __init__(self, err, msg=None):
        super().__init__(msg)
        self.err, self.msg = err, msg


NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,31}$")

# what each command takes: (required, optional)
TAKES = {
    "VM_GET": ((), ("VM_ID",)),
    "VM_SET": (("VM_ID", "POLICY_NAME"), ()),
    "POLICY_NEW": (("POLICY_NAME",), ("POLICY_MODE", "POLICY_DOMAIN") + RULES),
    "POLICY_SET": (("POLICY_NAME",), ("POLICY_MODE", "POLICY_DOMAIN") + RULES),
    "POLICY_GET": ((), ("POLICY_NAME",)),
    "POLICY_DEL": (("POLICY_NAME",), ()),
    "BIND_NEW": (("BIND_TYPE", "POLICY_NAME"), ("BIND_CGROUP", "BIND_PID")),
    "BIND_DEL": (("BIND_TYPE",), ("BIND_CGROUP", "BIND_PID")),
    "BIND_GET": ((), ()),
    "NET_BIND": (("VM_ID",), ("NET_IFNAME", "NET_IFINDEX")),
    "NET_UNBIND": ((), ("NET_IFNAME", "NET_IFINDEX")),
    "NET_GUARD_SET": (("NET_GUARD",), ("NET_IFNAME", "NET_IFINDEX")),
}


class Fake:
    """The kernel side: state, request handling, a receive thread."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
        self.sock.bind((0, 0))
        self.port = self.sock.getsockname()[0]
        self.policies = {}   # name -> dict(mode, domain)
        self.binds = {}      # (type, key) -> policy
        self.vms = {}        # id -> dict
        self.log = []        # (cmd, attrs) of every request
        self.intr_dumps = 0  # how many next dumps get NLM_F_DUMP_INTR
        self.per_datagram = 3
        self.old_abi = False  # a kernel from before the hypercall rules
        self.old_mem_abi = False  # one from before the memory rules
        self.old_net_abi = False  # one from before the network rules
        # rmmod: "going" (the family is still registered but a dump fails
        # with EPROTONOSUPPORT, the module reference being refused) or
        # "gone" (requests get ENOENT, the family lookup too); None
        self.unload = None
        # network devices of the host: name -> (ifindex, kind)
        self.devs = {"tap0": (7, "tap"), "mvtap1": (8, "macvtap"),
                     "eth0": (2, "veth"), "tap9": (9, "tap"),
                     "br0": (3, "bridge"), "br1": (4, "bridge")}
        # guarded bridges: name -> (unbound ports, dropped)
        self.guards = {}
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def env(self):
        env = dict(os.environ)
        env["KVMGUARD_TEST_PEER"] = "%d:%d" % (self.port, FAMILY)
        env["TZ"] = "UTC"
        return env

    def changes(self):
        return [c for c, _ in self.log
                if c not in ("VM_GET", "POLICY_GET", "BIND_GET",
                             "NET_GUARD_GET")]

    # --- wire ---
    def send(self, port, msgs):
        self.sock.sendto(b"".join(msgs), (port, 0))

    @staticmethod
    def msg(mtype, flags, seq, payload):
        return struct.pack("=IHHII", 16 + len(payload), mtype, flags, seq,
                           0) + payload + b"\0" * ((4 - len(payload) % 4) % 4)

    def genl(self, cmd, flags, seq, attrs):
        body = struct.pack("=BBH", cmd, 1, 0) + b"".join(attrs)
        return self.msg(FAMILY, flags, seq, body)

    def error(self, seq, req_hdr, err, text):
        payload = struct.pack("=i", -err) + req_hdr
        flags = NLM_F_CAPPED
        if text:
            flags |= NLM_F_ACK_TLVS
            payload += put_attr(NLMSGERR_ATTR_MSG, text.encode() + b"\0")
        return self.msg(NLMSG_ERROR, flags, seq, payload)

    def run(self):
        while not self.stop:
            try:
                data, (port, _) = self.sock.recvfrom(65536)
            except OSError:
                return
            with self.lock:
                try:
                    self.handle(data, port)
                except Exception:  # a fake bug: fail loudly, never hang
                    import traceback
                    fail("fake kernel crashed:\n" + traceback.format_exc())
                    self.send(port, [self.error(0, data[:16], 5, "fake")])

    def handle(self, data, port):
        ln, mtype, flags, seq, _ = struct.unpack_from("=IHHII", data)
        req_hdr = data[:16]
        if mtype == GENL_ID_CTRL:
            self.ctrl(port, flags, seq, req_hdr, data[16:ln])
            return
        if mtype != FAMILY:
            self.send(port, [self.error(seq, req_hdr, 95, None)])
            return
        if self.unload == "gone":
            # genetlink itself: no family with that id, no extack
            self.log.append(("?", {}))
            self.send(port, [self.error(seq, req_hdr, 2, None)])
            return
        cmd_num, _ver, _ = struct.unpack_from("=BBH", data, 16)
        cmd = {v: k for k, v in C.items()}.get(cmd_num, "?")
        try:
            attrs = parse_attrs(data[20:ln])
            self.log.append((cmd, attrs))
            dump = (flags & NLM_F_DUMP) == NLM_F_DUMP
            if dump:
                if self.unload == "going":
                    raise Refuse(93, None)
                if attrs:
                    raise Refuse(22, "dump takes no attributes")
                objs = self.dump(cmd)
                self.send_dump(port, seq, cmd_num, objs)
                return
            replies = self.doit(cmd, attrs)
        except Refuse as r:
            self.send(port, [self.error(seq, req_hdr, r.err, r.msg)])
            return
        out = [self.genl(cmd_num, 0, seq, a) for a in replies]
        if flags & NLM_F_ACK:
            out.append(self.msg(NLMSG_ERROR, NLM_F_CAPPED, seq,
                                struct.pack("=i", 0) + req_hdr))
        self.send(port, out)

    def ctrl(self, port, flags, seq, req_hdr, payload):
        """nlctrl's CTRL_CMD_GETFAMILY by name, as the kernel answers it:
        the reply and the ACK in two datagrams."""
        attrs = {}
        off = 4
        while off + 4 <= len(payload):
            ln, t = struct.unpack_from("=HH", payload, off)
            attrs[t & 0x3fff] = payload[off + 4:off + ln]
            off += (ln + 3) & ~3
        name = attrs.get(CTRL_ATTR_FAMILY_NAME, b"").rstrip(b"\0")
        if payload[0] != CTRL_CMD_GETFAMILY or name != b"kvmguard" or \
                self.unload == "gone":
            self.send(port, [self.error(seq, req_hdr, 2, None)])
            return
        body = struct.pack("=BBH", CTRL_CMD_NEWFAMILY, 2, 0) + \
            put_attr(CTRL_ATTR_FAMILY_ID, struct.pack("=H", FAMILY)) + \
            put_attr(CTRL_ATTR_FAMILY_NAME, b"kvmguard\0")
        self.send(port, [self.msg(GENL_ID_CTRL, 0, seq, body)])
        if flags & NLM_F_ACK:
            self.send(port, [self.msg(NLMSG_ERROR, NLM_F_CAPPED, seq,
                                      struct.pack("=i", 0) + req_hdr)])

    def send_dump(self, port, seq, cmd_num, objs):
        intr = 0
        if self.intr_dumps:
            self.intr_dumps -= 1
            intr = NLM_F_DUMP_INTR
        msgs = [self.genl(cmd_num, NLM_F_MULTI | (intr if i == len(objs) - 1
                                                  else 0), seq, a)
                for i, a in enumerate(objs)]
        msgs.append(self.msg(NLMSG_DONE, NLM_F_MULTI | intr, seq,
                             struct.pack("=i", 0)))
        for i in range(0, len(msgs), self.per_datagram):
            self.send(port, msgs[i:i + self.per_datagram])

    # --- the ABI ---
    def check(self, cmd, attrs):
        req, opt = TAKES[cmd]
        for name in attrs:
            if self.old_abi and name in RULES:
                raise Refuse(22, "unknown attribute")
            if self.old_mem_abi and name in MEM_RULES:
                raise Refuse(22, "unknown attribute")
            if self.old_net_abi and (name in NET_RULES or
                                     cmd.startswith("NET_")):
                raise Refuse(22, "unknown attribute")
            if name not in req and name not in opt:
                raise Refuse(22, "attribute %s not valid for this command"
                             % name)
            want = {U8: 1, U16: 2, U32: 4, U64: 8,
                    BIN: TRUNK_BYTES}.get(TYPES.get(name))
            if want and len(attrs[name]) != want:
                raise Refuse(22, "attribute %s has a bad length" % name)
        for name in req:
            if name not in attrs:
                raise Refuse(22, "missing attribute %s" % name)

    @staticmethod
    def s(attrs, name):
        raw = attrs[name]
        if not raw.endswith(b"\0"):
            raise Refuse(22, "%s is not a string" % name)
        return raw[:-1].decode("utf-8", "surrogateescape")

    def selector(self, attrs):
        t = attrs["BIND_TYPE"][0]
        if t == E["KVMGUARD_BIND_DEFAULT"]:
            return (t, "")
        if t == E["KVMGUARD_BIND_CGROUP"]:
            if "BIND_CGROUP" not in attrs:
                raise Refuse(22, "missing cgroup path")
            path = self.s(attrs, "BIND_CGROUP")
            if not path.startswith("/"):
                raise Refuse(22, "cgroup path must be absolute")
            if len(path) > 1:
                path = path.rstrip("/")
            return (t, path)
        if t == E["KVMGUARD_BIND_PID"]:
            if "BIND_PID" not in attrs:
                raise Refuse(22, "missing pid")
            return (t, struct.unpack("=I", attrs["BIND_PID"])[0])
        raise Refuse(22, "bad binding type")

    def policy_attrs(self, name):
        p = self.policies[name]
        for k, v in (("hc_restrict", 0), ("hc_allow", 0), ("hyperv", 0)):
            p.setdefault(k, v)
        for k, _, v in MEM_KEYS + NET_KEYS:
            p.setdefault(k, v)
        a = [enc("POLICY_NAME", name), enc("POLICY_MODE", p["mode"])]
        if p["domain"]:
            a.append(enc("POLICY_DOMAIN", p["domain"]))
        if not self.old_abi:
            a += [enc("POLICY_HC_RESTRICT", p["hc_restrict"]),
                  enc("POLICY_HC_ALLOW", p["hc_allow"]),
                  enc("POLICY_HYPERV", p["hyperv"])]
        if not self.old_abi and not self.old_mem_abi:
            a += [enc(attr, p[k]) for k, attr, _ in MEM_KEYS]
        if not self.old_abi and not self.old_mem_abi and not self.old_net_abi:
            a += [enc(attr, p[k]) for k, attr, _ in NET_KEYS]
        vms = sum(1 for v in self.vms.values() if v.get("policy") == name)
        nb = sum(1 for v in self.binds.values() if v == name)
        a += [enc("POLICY_VMS", vms), enc("POLICY_BINDINGS", nb)]
        return a

    def vm_attrs(self, vm):
        a = [enc("VM_ID", vm["id"]), enc("VM_PID", vm["pid"]),
             enc("VM_COMM", vm["comm"]), enc("VM_CGROUP", vm["cgroup"]),
             enc("VM_CREATED_NS", vm["created_ns"]),
             enc("VM_VCPUS", vm["vcpus"]), enc("VM_MEMSLOTS", vm["memslots"]),
             enc("VM_MEM_BYTES", vm["mem_bytes"]),
             enc("VM_FLAGS", vm["flags"]), enc("VM_BOUND_BY", vm["bound_by"])]
        if vm.get("policy"):
            a.append(enc("POLICY_NAME", vm["policy"]))
        if "hc" in vm:
            stats = b"".join(
                put_attr(A["HC_STAT"], enc("HC_NR", nr) +
                         enc("HC_ALLOWED", al) + enc("HC_DENIED", de))
                for nr, al, de in vm["hc"])
            a.append(put_attr(A["VM_HC_STATS"] | 0x8000, stats))
            a += [enc("VM_HV_ALLOWED", vm["hv"][0]),
                  enc("VM_HV_DENIED", vm["hv"][1])]
        if "mem" in vm:
            a += [enc(n, v) for n, v in zip(VM_MEM_ATTRS, vm["mem"])]
        if not self.old_net_abi:
            devs = b"".join(
                put_attr(A["NET_DEV"] | 0x8000,
                         enc("NET_IFINDEX", d["ifindex"]) +
                         enc("NET_IFNAME", d["name"]) +
                         enc("NET_BOUND_BY", d["bound_by"]) +
                         b"".join(enc(n, v) for n, v in
                                  zip(NET_DEV_COUNTERS,
                                      d.get("counters", (0,) * 6))))
                for d in vm.get("net", []))
            a.append(put_attr(A["VM_NET_DEVS"] | 0x8000, devs))
        return a

    def bind_attrs(self, key, policy):
        t, k = key
        a = [enc("BIND_TYPE", t)]
        if t == E["KVMGUARD_BIND_CGROUP"]:
            a.append(enc("BIND_CGROUP", k))
        elif t == E["KVMGUARD_BIND_PID"]:
            a.append(enc("BIND_PID", k))
        return a + [enc("POLICY_NAME", policy)]

    def dump(self, cmd):
        if cmd == "POLICY_GET":
            return [self.policy_attrs(n)
                    for n in sorted(self.policies, key=str.encode)]
        if cmd == "BIND_GET":
            return [self.bind_attrs(k, v) for k, v in sorted(
                self.binds.items(), key=lambda kv: (kv[0][0], str(kv[0][1])
                                                    if kv[0][0] != 3 else
                                                    "%010d" % kv[0][1]))]
        if cmd == "VM_GET":
            return [self.vm_attrs(self.vms[i]) for i in sorted(self.vms)]
        if cmd == "NET_GUARD_GET":
            return [[enc("NET_IFINDEX", self.devs[n][0]),
                     enc("NET_IFNAME", n), enc("NET_GUARD", 1),
                     enc("NET_GUARD_PORTS", g[0]),
                     enc("NET_GUARD_DROPPED", g[1])]
                    for n, g in sorted(self.guards.items())]
        raise Refuse(95, "no dump for this command")

    def name(self, attrs):
        n = self.s(attrs, "POLICY_NAME")
        if not NAME_RE.match(n):
            raise Refuse(22, "invalid policy name")
        return n

    def doit(self, cmd, attrs):
        if cmd not in TAKES:
            raise Refuse(95, None)
        self.check(cmd, attrs)
        if cmd == "POLICY_NEW":
            n = self.name(attrs)
            if n in self.policies:
                raise Refuse(17, "policy %s exists" % n)
            self.policies[n] = P(0, "")
            cmd = "POLICY_SET"
        if cmd == "POLICY_SET" and "POLICY_HC_ALLOW" in attrs and \
                attrs.get("POLICY_HC_RESTRICT") != b"\x01":
            raise Refuse(22, "HC_ALLOW needs HC_RESTRICT 1")
        if cmd == "POLICY_SET":
            n = self.name(attrs)
            if n not in self.policies:
                raise Refuse(2, "no policy %s" % n)
            p = self.policies[n]
            if "POLICY_MODE" in attrs:
                if attrs["POLICY_MODE"][0] > E["__KVMGUARD_MODE_MAX"] - 1:
                    raise Refuse(22, "bad mode")
                p["mode"] = attrs["POLICY_MODE"][0]
            if "POLICY_DOMAIN" in attrs:
                p["domain"] = self.s(attrs, "POLICY_DOMAIN")
            if "POLICY_HC_RESTRICT" in attrs:
                p["hc_restrict"] = attrs["POLICY_HC_RESTRICT"][0]
                p["hc_allow"] = struct.unpack(
                    "=Q", attrs.get("POLICY_HC_ALLOW", b"\0" * 8))[0]
            if "POLICY_HYPERV" in attrs:
                p["hyperv"] = attrs["POLICY_HYPERV"][0]
            limits = {"POLICY_MEM_SHARED": E["__KVMGUARD_MEM_SHARED_MAX"] - 1,
                      "POLICY_MEM_KSM": E["__KVMGUARD_KSM_MAX"] - 1}
            if "POLICY_NET_TAG" in attrs:
                tag = struct.unpack("=H", attrs["POLICY_NET_TAG"])[0]
                if tag > 4094:
                    raise Refuse(34, "VID out of range")
                p["net_tag"] = tag
            if "POLICY_NET_TRUNK" in attrs:
                t = attrs["POLICY_NET_TRUNK"]
                if t[0] & 1 or t[-1] & 0x80:
                    raise Refuse(34, "VIDs 0 and 4095 are reserved")
                p["net_trunk"] = t
            if "POLICY_NET_ISOLATE" in attrs:
                if attrs["POLICY_NET_ISOLATE"][0] > 1:
                    raise Refuse(34, "isolate out of range")
                p["net_isolate"] = attrs["POLICY_NET_ISOLATE"][0]
            for k, attr, _ in MEM_KEYS:
                if attr not in attrs:
                    continue
                if attr in limits:
                    if attrs[attr][0] > limits[attr]:
                        raise Refuse(34, "%s out of range" % attr)
                    p[k] = attrs[attr][0]
                else:
                    p[k] = struct.unpack("=Q", attrs[attr])[0]
            return []
        if cmd == "POLICY_GET":
            if "POLICY_NAME" not in attrs:
                raise Refuse(22, "missing attribute POLICY_NAME")
            n = self.name(attrs)
            if n not in self.policies:
                raise Refuse(2, "no policy %s" % n)
            return [self.policy_attrs(n)]
        if cmd == "POLICY_DEL":
            n = self.name(attrs)
            if n not in self.policies:
                raise Refuse(2, "no policy %s" % n)
            if n in self.binds.values():
                raise Refuse(16, "policy %s is bound" % n)
            del self.policies[n]
            return []
        if cmd == "BIND_NEW":
            n = self.name(attrs)
            if n not in self.policies:
                raise Refuse(2, "no policy %s" % n)
            self.binds[self.selector(attrs)] = n
            return []
        if cmd == "BIND_DEL":
            key = self.selector(attrs)
            if key not in self.binds:
                raise Refuse(2, "no such binding")
            del self.binds[key]
            return []
        if cmd in ("VM_GET", "VM_SET"):
            if "VM_ID" not in attrs:
                raise Refuse(22, "missing attribute VM_ID")
            vid = struct.unpack("=Q", attrs["VM_ID"])[0]
            if vid not in self.vms:
                raise Refuse(2, "no VM %d" % vid)
            if cmd == "VM_GET":
                return [self.vm_attrs(self.vms[vid])]
            n = self.name(attrs)
            if n not in self.policies:
                raise Refuse(2, "no policy %s" % n)
            self.vms[vid]["policy"] = n
            self.vms[vid]["bound_by"] = E["KVMGUARD_BOUND_EXPLICIT"]
            return []
        if cmd in ("NET_BIND", "NET_UNBIND"):
            return self.net_bind(cmd, attrs)
        if cmd == "NET_GUARD_SET":
            name = self.s(attrs, "NET_IFNAME")
            if name not in self.devs:
                raise Refuse(19, None)
            if self.devs[name][1] != "bridge":
                raise Refuse(95, "device is not a Linux bridge")
            if attrs["NET_GUARD"][0] > 1:
                raise Refuse(34, "out of range")
            if attrs["NET_GUARD"][0]:
                self.guards.setdefault(name, (2, 0))
            else:
                self.guards.pop(name, None)
            return []
        raise Refuse(95, None)

    def net_bind(self, cmd, attrs):
        """NET_BIND/UNBIND; some refusals come without an extack message,
        as a kernel may send them, so the CLI's own hints show."""
        if ("NET_IFNAME" in attrs) == ("NET_IFINDEX" in attrs):
            raise Refuse(22, "NET_IFNAME or NET_IFINDEX is needed")
        if "NET_IFINDEX" in attrs:
            index = struct.unpack("=I", attrs["NET_IFINDEX"])[0]
            name = next((n for n, (i, _) in self.devs.items() if i == index),
                        None)
        else:
            name = self.s(attrs, "NET_IFNAME")
        owner = next((v for v in self.vms.values()
                      if any(d["name"] == name for d in v.get("net", []))),
                     None)
        if cmd == "NET_UNBIND":
            if name not in self.devs:
                raise Refuse(19, None)
            if not owner:
                raise Refuse(2, None)
            owner["net"] = [d for d in owner["net"] if d["name"] != name]
            return []
        vid = struct.unpack("=Q", attrs["VM_ID"])[0]
        if vid not in self.vms:
            raise Refuse(2, "no VM %d" % vid)
        if name not in self.devs:
            raise Refuse(19, None)
        ifindex, kind = self.devs[name]
        if kind not in ("tap", "macvtap"):
            raise Refuse(95, None)
        if owner and owner is not self.vms[vid]:
            raise Refuse(16, "%s is bound to VM %d" % (name, owner["id"]))
        if not owner:
            self.vms[vid].setdefault("net", []).append(
                {"name": name, "ifindex": ifindex,
                 "bound_by": E["KVMGUARD_NET_BOUND_MANUAL"]})
        return []

    def event(self, port, etype, vm, time_ns, **extra):
        a = [put_attr(A["EVENT_TYPE"], struct.pack("=B", etype)),
             enc("EVENT_TIME_NS", time_ns)]
        if vm:
            a += [enc("VM_ID", vm["id"]), enc("VM_PID", vm["pid"]),
                  enc("VM_COMM", vm["comm"])]
        if vm and vm.get("policy"):
            a.append(enc("POLICY_NAME", vm["policy"]))
        for k, v in extra.items():
            a.append(enc(k, v))
        self.send(port, [self.genl(C["EVENT"], 0, 0, a)])


# ---------------------------------------------------------------- tests

FAILS = []
CLI = None
VALGRIND = []


def run(fake, *args, stdin=None, expect=0, valgrind=True):
    cmd = (VALGRIND if valgrind else []) + [CLI] + list(args)
    p = subprocess.run(cmd, input=stdin, capture_output=True,
                       env=fake.env() if fake else None, timeout=30)
    out = p.stdout.decode(errors="replace")
    err = p.stderr.decode(errors="replace")
    if p.returncode != expect:
        fail("%s: exit %d, expected %d\nstdout: %s\nstderr: %s"
             % (" ".join(args), p.returncode, expect, out, err))
    return out, err


def fail(msg):
    FAILS.append(msg)
    print("FAIL: " + msg)


def check(cond, msg):
    if not cond:
        fail(msg)


def P(mode, domain, hc_restrict=0, hc_allow=0, hyperv=0, mem_max=UNLIMITED,
      mem_shared=0, mem_ksm=0, mem_dirty_max=UNLIMITED, net_tag=0,
      net_trunk=NO_TRUNK, net_isolate=0):
    return {"mode": mode, "domain": domain, "hc_restrict": hc_restrict,
            "hc_allow": hc_allow, "hyperv": hyperv, "mem_max": mem_max,
            "mem_shared": mem_shared, "mem_ksm": mem_ksm,
            "mem_dirty_max": mem_dirty_max, "net_tag": net_tag,
            "net_trunk": net_trunk, "net_isolate": net_isolate}


def test_rules(f, tmp):
    """The hypercall and Hyper-V rules, on a kernel that knows them and on
    one that predates them."""
    f.policies.clear()
    f.binds.clear()
    run(f, "policy", "add", "hc", "hypercalls", "allow", "kick_cpu,send_ipi,20",
        "hyperv", "deny")
    check(f.policies["hc"] == P(0, "", 1, (1 << 5) | (1 << 10) | (1 << 20),
                                1), "rules: %r" % f.policies)
    out, _ = run(f, "-j", "policy", "show", "hc")
    d = json.loads(out)
    check(d["hypercalls"] == [5, 10, 20] and d["hyperv"] == "deny",
          "rules json: %r" % d)
    out, _ = run(f, "policy", "show")
    check(out.splitlines()[1].split()[5:7] == ["kick_cpu,send_ipi,20", "deny"],
          "rules table: %r" % out)
    dump, _ = run(f, "dump")
    check(dump == "policy add hc mode enforce hypercalls allow "
          "kick_cpu,send_ipi,20 hyperv deny\n" + VM_LINES, "rules dump: %r" % dump)
    f.log.clear()
    run(f, "apply", "-", stdin=dump.encode())
    check(f.changes() == [], "rules: dump | apply - changed %r" % f.changes())
    run(f, "policy", "set", "hc", "hypercalls", "all")
    check(f.policies["hc"]["hc_restrict"] == 0, "hypercalls all")
    run(f, "policy", "set", "hc", "hypercalls", "none")
    check(f.policies["hc"]["hc_restrict"] == 1 and
          f.policies["hc"]["hc_allow"] == 0, "hypercalls none")
    conf = os.path.join(tmp, "r.conf")
    open(conf, "w").write("policy add hc\n")
    run(f, "apply", conf)
    check(f.policies["hc"] == P(0, ""), "apply resets rules: %r"
          % f.policies)

    # a kernel from before the rules: apply must not send them needlessly
    f.old_abi = True
    f.policies = {"p": P(0, "")}
    open(conf, "w").write("policy add p mode audit\npolicy add q\n")
    f.log.clear()
    run(f, "apply", conf)
    check(all(not set(a) & set(RULES) for _, a in f.log),
          "old kernel got rule attributes: %r" % f.log)
    check(f.policies["p"]["mode"] == 1 and "q" in f.policies,
          "old kernel apply: %r" % f.policies)
    _, err = run(f, "policy", "set", "p", "hyperv", "deny", expect=1)
    check(err == "kvmguard: cannot change policy p: Invalid argument: "
          "unknown attribute\n", "old kernel refusal: %r" % err)
    f.old_abi = False
    f.policies = {}


def test_mem(f, tmp):
    """The memory rules: grammar to attributes, show, dump | apply, and a
    kernel that predates them."""
    f.policies.clear()
    f.binds.clear()
    f.log.clear()
    run(f, "policy", "add", "m", "mem", "max", "4G", "mem", "shared",
        "domain", "mem", "ksm", "deny", "mem", "dirty-log", "max", "16MiB",
        "domain", "t1")
    check(f.policies["m"] == P(0, "t1", mem_max=4 << 30, mem_shared=2,
                               mem_ksm=1, mem_dirty_max=16 << 20),
          "mem rules: %r" % f.policies)
    check(set(f.log[0][1]) == {"POLICY_NAME", "POLICY_DOMAIN"} |
          set(MEM_RULES) and
          f.log[0][1]["POLICY_MEM_MAX"] == struct.pack("=Q", 4 << 30),
          "policy add sent %r" % f.log[0][1])
    # set: only what it names; none is the ABI's u64 max; 0 is a limit
    f.log.clear()
    run(f, "policy", "set", "m", "mem", "max", "none")
    check(set(f.log[0][1]) == {"POLICY_NAME", "POLICY_MEM_MAX"} and
          f.log[0][1]["POLICY_MEM_MAX"] == b"\xff" * 8,
          "mem max none sent %r" % f.log[0][1])
    run(f, "policy", "set", "m", "mem", "dirty-log", "max", "0", "mem",
        "shared", "deny")
    check(f.policies["m"]["mem_dirty_max"] == 0 and
          f.policies["m"]["mem_shared"] == 1 and
          f.policies["m"]["mem_max"] == UNLIMITED,
          "policy set mem: %r" % f.policies["m"])
    run(f, "policy", "add", "big", "mem", "max", "16777215T", "mem",
        "dirty-log", "max", "4097")
    _, err = run(f, "policy", "set", "m", "mem", "max", "4 G", expect=2)
    check(err.startswith("kvmguard: invalid mem max '4 G': expected bytes "
                         "with an optional K, M, G or T suffix (such as 4G)"
                         ", or none\n"), "bad size message: %r" % err)

    out, _ = run(f, "policy", "show")
    rows = [l.split() for l in out.splitlines()]
    check(rows[0][7:11] == ["MEM-MAX", "SHARED", "KSM", "DIRTY-LOG-MAX"] and
          rows[1][0] == "big" and
          rows[1][7:11] == ["16777215T", "allow", "allow", "4097"] and
          rows[2][0] == "m" and rows[2][7:11] == ["none", "deny", "deny", "0"],
          "policy show mem columns: %r" % out)
    out, _ = run(f, "-j", "policy", "show")
    d = json.loads(out)
    check(d[0]["mem"] == {"max": 16777215 << 40, "shared": "allow",
                          "ksm": "allow", "dirty_log_max": 4097} and
          d[1]["mem"] == {"max": None, "shared": "deny", "ksm": "deny",
                          "dirty_log_max": 0},
          "policy show mem json: %r" % d)
    out, _ = run(f, "-j", "policy", "show", "m")
    check(json.loads(out)["mem"]["shared"] == "deny",
          "policy show NAME mem json: %r" % out)
    run(f, "policy", "set", "m", "mem", "shared", "domain", "mem", "max",
        "1536M")
    out, _ = run(f, "-j", "policy", "show", "m")
    check(json.loads(out)["mem"] == {"max": 1536 << 20, "shared": "domain",
                                     "ksm": "deny", "dirty_log_max": 0},
          "mem domain json: %r" % out)

    # what show and dump print reads back: dump | apply - changes nothing
    dump, _ = run(f, "dump")
    check(dump == "policy add big mode enforce mem max 16777215T "
          "mem dirty-log max 4097\n"
          "policy add m mode enforce domain t1 mem max 1536M mem shared "
          "domain mem ksm deny mem dirty-log max 0\n" + VM_LINES, "mem dump: %r" % dump)
    f.log.clear()
    run(f, "-v", "apply", "-", stdin=dump.encode())
    check(f.changes() == [], "mem: dump | apply - changed %r" % f.changes())
    # the table's cells are rule values too
    out, _ = run(f, "policy", "show", "m")
    cells = out.splitlines()[1].split()
    line = "policy add m domain t1 mem max %s mem shared %s mem ksm %s " \
           "mem dirty-log max %s\npolicy add big mem max 16777215T " \
           "mem dirty-log max 4097\n" % tuple(cells[7:11])
    f.log.clear()
    run(f, "apply", "-", stdin=line.encode())
    check(f.changes() == [], "policy show cells do not read back: %r %r"
          % (line, f.changes()))

    # apply puts omitted rules back to their defaults
    conf = os.path.join(tmp, "m.conf")
    open(conf, "w").write("policy add m domain t1 mem ksm deny\n")
    f.log.clear()
    out, _ = run(f, "-v", "apply", conf)
    check(f.policies == {"m": P(0, "t1", mem_ksm=1)},
          "apply mem defaults: %r" % f.policies)
    check(out == "policy set m mode enforce domain t1 hypercalls all hyperv "
          "allow mem max none mem shared allow mem ksm deny mem dirty-log "
          "max none net tag none net trunk none net isolate off\n"
          "policy del big\n", "apply -v mem: %r" % out)

    # a kernel that knows hypercall rules but not memory ones
    f.old_mem_abi = True
    f.policies = {"p": P(0, "")}
    open(conf, "w").write("policy add p mode audit\npolicy add q\n")
    f.log.clear()
    run(f, "apply", conf)
    check(all(not set(a) & set(MEM_RULES) for _, a in f.log),
          "old kernel got memory rules: %r" % f.log)
    check(f.policies["p"]["mode"] == 1 and "q" in f.policies,
          "old kernel apply: %r" % f.policies)
    out, _ = run(f, "-j", "policy", "show", "p")
    check(json.loads(out)["mem"] == {"max": None, "shared": "allow",
                                     "ksm": "allow", "dirty_log_max": None},
          "old kernel mem json: %r" % out)
    open(conf, "w").write("policy add p mode audit mem max 1G\n")
    _, err = run(f, "apply", conf, expect=1)
    check(err == "kvmguard: cannot change policy p: Invalid argument: "
          "unknown attribute\n" + conf + ":1: refused: policy set p mode "
          "audit domain none hypercalls all hyperv allow mem max 1G\n"
          "kvmguard: nothing was changed\n",
          "old kernel mem refusal: %r" % err)
    f.old_mem_abi = False
    f.policies = {}


def test_net(f, tmp):
    """The network rules: grammar to attributes (the trunk bitmap), show,
    dump | apply, old kernels; net bind/unbind; vm show's devices."""
    f.policies.clear()
    f.binds.clear()
    f.log.clear()
    run(f, "policy", "add", "n", "net", "tag", "100", "net", "trunk",
        "300,200-210,4094", "net", "isolate", "on")
    want = trunk((200, 210), 300, 4094)
    check(f.policies["n"] == P(0, "", net_tag=100, net_trunk=want,
                               net_isolate=1), "net rules: %r"
          % {k: v for k, v in f.policies["n"].items() if k != "net_trunk"})
    a = f.log[0][1]
    check(set(a) == {"POLICY_NAME"} | set(NET_RULES) and
          a["POLICY_NET_TAG"] == struct.pack("=H", 100) and
          a["POLICY_NET_TRUNK"] == want and len(want) == 512 and
          want[25] == 0xff and want[26] == 7 and want[37] == 0x10 and want[511] == 0x40 and
          a["POLICY_NET_ISOLATE"] == b"\x01", "policy add sent %r" % a)
    # set: only what it names; none is all zero, tag none is 0
    f.log.clear()
    run(f, "policy", "set", "n", "net", "trunk", "none")
    check(set(f.log[0][1]) == {"POLICY_NAME", "POLICY_NET_TRUNK"} and
          f.log[0][1]["POLICY_NET_TRUNK"] == NO_TRUNK,
          "net trunk none sent %r" % f.log[0][1])
    run(f, "policy", "set", "n", "net", "tag", "none", "net", "trunk",
        "1-4094", "net", "isolate", "off")
    check(f.policies["n"] == P(0, "", net_trunk=trunk((1, 4094))),
          "policy set net: %r" % f.policies["n"]["net_tag"])
    # bad values never reach the kernel
    f.log.clear()
    for args, msg in (
            (("net", "trunk", "0,5"), "invalid net trunk '0,5': VID 0 is "
             "reserved (use VIDs 1 to 4094 and ranges such as "
             "100,200-210, or none)"),
            (("net", "trunk", "5,4095"), "invalid net trunk '5,4095': "
             "VID 4095 is reserved"),
            (("net", "trunk", "7-9000"), "invalid net trunk '7-9000': "
             "VID 9000 is out of range"),
            (("net", "trunk", "1,1"), "invalid net trunk '1,1': VID 1 is "
             "listed twice"),
            (("net", "tag", "4095"), "invalid net tag '4095': VID 4095 is "
             "reserved (use a VID 1 to 4094, or none)"),
            (("net", "isolate", "1"), "invalid net isolate value '1': "
             "expected off or on")):
        _, err = run(f, "policy", "set", "n", *args, expect=2)
        check(err.startswith("kvmguard: " + msg),
              "%s: %r" % (" ".join(args), err))
    check(f.log == [], "bad net values reached the kernel: %r" % f.log)

    run(f, "policy", "add", "o", "net", "tag", "5", "net", "trunk",
        "10,12,14-15", "net", "isolate", "on")
    out, _ = run(f, "policy", "show")
    rows = [l.split() for l in out.splitlines()]
    check(rows[0][11:14] == ["NET-TAG", "TRUNK", "ISOLATE"] and
          rows[1][11:14] == ["none", "1-4094", "off"] and
          rows[2][11:14] == ["5", "10,12,14-15", "on"],
          "policy show net columns: %r" % out)
    out, _ = run(f, "-j", "policy", "show")
    d = json.loads(out)
    check(d[0]["net"] == {"tag": None, "trunk": list(range(1, 4095)),
                          "isolate": False} and
          d[1]["net"] == {"tag": 5, "trunk": [10, 12, 14, 15],
                          "isolate": True}, "policy show net json: %r"
          % d[1]["net"])

    # dump | apply - changes nothing; the table's cells read back
    dump, _ = run(f, "dump")
    check(dump == "policy add n mode enforce net trunk 1-4094\n"
          "policy add o mode enforce net tag 5 net trunk 10,12,14-15 "
          "net isolate on\n" + VM_LINES, "net dump: %r" % dump)
    f.log.clear()
    run(f, "apply", "-", stdin=dump.encode())
    check(f.changes() == [], "net: dump | apply - changed %r" % f.changes())
    line = "policy add o net tag %s net trunk %s net isolate %s\n" \
           "policy add n net trunk 1-4094\n" % tuple(rows[2][11:14])
    run(f, "apply", "-", stdin=line.encode())
    check(f.changes() == [], "net cells do not read back: %r" % f.changes())
    # apply puts omitted rules back to their defaults
    conf = os.path.join(tmp, "n.conf")
    open(conf, "w").write("policy add o net tag 5\n")
    out, _ = run(f, "-v", "apply", conf)
    check(f.policies == {"o": P(0, "", net_tag=5)} and
          out.endswith("net tag 5 net trunk none net isolate off\n"
                       "policy del n\n"), "apply net defaults: %r" % out)

    # a kernel from before the network rules
    f.old_net_abi = True
    f.policies = {"p": P(0, "")}
    open(conf, "w").write("policy add p mode audit mem max 1G\n"
                          "policy add q\n")
    f.log.clear()
    run(f, "apply", conf)
    check(all(not set(a) & set(NET_RULES) for _, a in f.log) and
          f.policies["p"]["mem_max"] == 1 << 30 and "q" in f.policies,
          "old kernel got network rules: %r" % f.log)
    out, _ = run(f, "-j", "policy", "show", "p")
    check(json.loads(out)["net"] == {"tag": None, "trunk": [],
                                     "isolate": False},
          "old kernel net json: %r" % out)
    _, err = run(f, "policy", "set", "p", "net", "isolate", "on", expect=1)
    check(err == "kvmguard: cannot change policy p: Invalid argument: "
          "unknown attribute\n", "old kernel net refusal: %r" % err)
    f.old_net_abi = False
    f.policies = {}

    # net bind / unbind
    f.vms = {1: vm(1, policy="web"), 2: vm(2)}
    f.log.clear()
    out, err = run(f, "net", "bind", "1", "dev", "tap0")
    check(out == "" and err == "" and f.log[0] == (
        "NET_BIND", {"VM_ID": struct.pack("=Q", 1),
                     "NET_IFNAME": b"tap0\0"}), "net bind: %r" % f.log)
    run(f, "net", "bind", "1", "dev", "tap0")    # again: nothing changes
    run(f, "net", "bind", "1", "dev", "mvtap1")
    check([d["name"] for d in f.vms[1]["net"]] == ["tap0", "mvtap1"],
          "net bind state: %r" % f.vms[1])
    for args, msg in (
            (("bind", "2", "dev", "tap0"), "cannot bind tap0 to VM 2: "
             "Device or resource busy: tap0 is bound to VM 1"),
            (("bind", "9", "dev", "tap9"), "cannot bind tap9 to VM 9: "
             "No such file or directory: no VM 9"),
            (("bind", "2", "dev", "nodev"), "cannot bind nodev to VM 2: "
             "No such device (no such network device)"),
            (("bind", "2", "dev", "eth0"), "cannot bind eth0 to VM 2: "
             "Operation not supported (only a tap or a macvtap device can "
             "be bound)"),
            (("unbind", "dev", "tap9"), "cannot unbind tap9: No such file "
             "or directory (the device is not bound to a VM)"),
            (("unbind", "dev", "nodev"), "cannot unbind nodev: No such "
             "device (no such network device)")):
        out, err = run(f, "net", *args, expect=1)
        check(out == "" and err == "kvmguard: " + msg + "\n",
              "net %s: %r" % (" ".join(args), err))
    f.vms[1]["net"][0]["bound_by"] = E["KVMGUARD_NET_BOUND_VHOST"]
    f.vms[1]["net"][0]["counters"] = (10, 12, 30, 1, 2, 1 << 63)
    f.vms[1]["net"].append({"name": "t\x01p", "ifindex": 99,
                            "bound_by": E["KVMGUARD_NET_BOUND_FOUND"],
                            "counters": (0, 0, 0, 0, 0, 0)})
    out, _ = run(f, "vm", "show", "1")
    check("net devices: 3\n"
          "net device tap0: ifindex 7, bound by vhost, tagged 10, "
          "forwarded 12, delivered 30, tag denied 1, segment denied 2, "
          "isolate denied 9223372036854775808\n"
          "net device mvtap1: ifindex 8, bound by manual, tagged 0, "
          "forwarded 0, delivered 0, tag denied 0, segment denied 0, "
          "isolate denied 0\n"
          "net device t?p: ifindex 99, bound by found, tagged 0, "
          "forwarded 0, delivered 0, tag denied 0, segment denied 0, "
          "isolate denied 0\n" in out, "vm show net: %r" % out)
    out2, _ = run(f, "vm", "show", "2")
    check("net devices: 0\npolicy: none\n" in out2,
          "vm show without devices: %r" % out2)
    out, _ = run(f, "-j", "vm", "show", "1")
    check(json.loads(out)["net_devs"] == [
        {"name": "tap0", "ifindex": 7, "bound_by": "vhost", "tagged": 10,
         "forwarded": 12, "delivered": 30,
         "denied": {"tag": 1, "segment": 2, "isolate": 1 << 63}},
        {"name": "mvtap1", "ifindex": 8, "bound_by": "manual", "tagged": 0,
         "forwarded": 0, "delivered": 0,
         "denied": {"tag": 0, "segment": 0, "isolate": 0}},
        {"name": "t\x01p", "ifindex": 99, "bound_by": "found", "tagged": 0,
         "forwarded": 0, "delivered": 0,
         "denied": {"tag": 0, "segment": 0, "isolate": 0}}],
        "vm show net json: %r" % out)
    out, _ = run(f, "-j", "vm", "list")
    check([len(v["net_devs"]) for v in json.loads(out)] == [3, 0],
          "vm list net json: %r" % out)
    run(f, "net", "unbind", "dev", "tap0")
    check([d["name"] for d in f.vms[1]["net"]] == ["mvtap1", "t\x01p"],
          "net unbind: %r" % f.vms[1]["net"])
    f.log.clear()
    index = f.devs["mvtap1"][0]
    out, err = run(f, "net", "unbind", "ifindex", str(index))
    check(out == "" and err == "" and f.log[0] == (
        "NET_UNBIND", {"NET_IFINDEX": struct.pack("=I", index)}) and
          [d["name"] for d in f.vms[1]["net"]] == ["t\x01p"],
          "net unbind ifindex: %r %r" % (err, f.log))
    out, err = run(f, "net", "unbind", "ifindex", "4000", expect=1)
    check("cannot unbind ifindex 4000: No such device" in err,
          "net unbind unknown ifindex: %r" % err)
    f.vms = {}


def test_guard(f, tmp):
    """net guard, net show, and guards in dump and apply."""
    f.policies.clear()
    f.binds.clear()
    f.vms = {}
    f.guards.clear()
    run(f, "net", "guard", "br0", "on")
    check(f.guards == {"br0": (2, 0)}, "net guard on: %r" % f.guards)
    f.guards["br0"] = (2, 17)
    out, _ = run(f, "net", "show")
    check(out.splitlines()[1].split() == ["br0", "3", "2", "17"],
          "net show: %r" % out)
    out, _ = run(f, "-j", "net", "show")
    check(json.loads(out) == {"guards": [{"bridge": "br0", "ifindex": 3,
                                          "unbound_ports": 2,
                                          "dropped": 17}]},
          "net show -j: %r" % out)
    out, _ = run(f, "dump")
    check(out == "net guard br0 on\n", "dump with a guard: %r" % out)
    _, err = run(f, "net", "guard", "eth0", "on", expect=1)
    check("not a Linux bridge" in err, "guard of a veth: %r" % err)
    _, err = run(f, "net", "guard", "nosuch", "on", expect=1)
    check("no such network device" in err, "guard of nothing: %r" % err)
    for bad in (["net", "guard"], ["net", "guard", "br0"],
                ["net", "guard", "br0", "maybe"],
                ["net", "guard", "br0", "on", "x"], ["net", "show", "x"]):
        run(f, *bad, expect=2)

    # apply: the file's guards on, every other one off; idempotent
    conf = os.path.join(tmp, "g.conf")
    open(conf, "w").write("net guard br1 on\nnet guard br0 off\n")
    f.log.clear()
    out, _ = run(f, "-v", "apply", conf)
    check(f.guards == {"br1": (2, 0)}, "apply guards: %r" % f.guards)
    check(out == "net guard br1 on\nnet guard br0 off\n",
          "apply -v guards: %r" % out)
    f.log.clear()
    run(f, "apply", conf)
    check(f.changes() == [], "apply guards again: %r" % f.changes())
    dump, _ = run(f, "dump")
    f.log.clear()
    run(f, "apply", "-", stdin=dump.encode())
    check(f.changes() == [], "dump | apply - of guards: %r" % f.changes())
    for line in ("net bind 1 dev tap0", "net show", "net guard br1 on\n"
                 "net guard br1 off"):
        _, err = run(f, "apply", "-", stdin=(line + "\n").encode(),
                     expect=1)
        check("<stdin>:" in err, "apply %r: %r" % (line, err))
    open(conf, "w").write("")
    run(f, "apply", conf)
    check(f.guards == {}, "apply without guards: %r" % f.guards)

    # events of a guard: no VM
    f.guards.clear()


def vm(i, **kw):
    d = {"id": i, "pid": 1000 + i, "comm": "qemu-system-x86",
         "cgroup": "/machine.slice/machine-qemu-%d.scope" % i,
         "created_ns": 1700000000 * 10**9 + 123456789, "vcpus": 2,
         "memslots": 3, "mem_bytes": 4 << 30, "flags": 0,
         "bound_by": E["KVMGUARD_BOUND_NONE"], "policy": None}
    d.update(kw)
    return d


def test_policy_cli(f):
    run(f, "policy", "add", "web", "mode", "audit", "domain", "tenantA")
    check(f.policies == {"web": P(1, "tenantA")},
          "policy add: %r" % f.policies)
    _, err = run(f, "policy", "add", "web", expect=1)
    check(err == "kvmguard: cannot add policy web: File exists: "
          "policy web exists\n", "EEXIST message: %r" % err)
    # set changes only what it names
    f.log.clear()
    run(f, "policy", "set", "web", "mode", "enforce")
    check(set(f.log[0][1]) == {"POLICY_NAME", "POLICY_MODE"},
          "policy set sent %r" % f.log[0][1])
    check(f.policies["web"] == P(0, "tenantA"),
          "policy set: %r" % f.policies)
    run(f, "policy", "set", "web", "domain", "none")
    check(f.policies["web"]["domain"] == "", "domain none must clear")
    _, err = run(f, "policy", "set", "nope", "mode", "audit", expect=1)
    check(err == "kvmguard: cannot change policy nope: No such file or "
          "directory: no policy nope\n", "ENOENT message: %r" % err)
    run(f, "policy", "add", "db", "domain", "tenantB")
    out, _ = run(f, "policy", "show")
    lines = out.splitlines()
    check(lines[0].split() == ["NAME", "MODE", "DOMAIN", "VMS", "BINDINGS",
                               "HYPERCALLS", "HYPERV", "MEM-MAX", "SHARED",
                               "KSM", "DIRTY-LOG-MAX", "NET-TAG", "TRUNK",
                               "ISOLATE", "XEN"],
          "policy show header: %r" % out)
    check(lines[1].split() == ["db", "enforce", "tenantB", "0", "0", "all",
                               "allow", "none", "allow", "allow", "none",
                               "none", "none", "off", "allow"] and
          lines[2].split() == ["web", "enforce", "-", "0", "0", "all",
                               "allow", "none", "allow", "allow", "none",
                               "none", "none", "off", "allow"],
          "policy show rows: %r" % out)
    mem = {"max": None, "shared": "allow", "ksm": "allow",
           "dirty_log_max": None}
    net = {"tag": None, "trunk": [], "isolate": False}
    out, _ = run(f, "-j", "policy", "show")
    check(json.loads(out) == [
        {"name": "db", "mode": "enforce", "domain": "tenantB",
         "hypercalls": None, "hyperv": "allow", "mem": mem, "net": net,
         "vms": 0, "bindings": 0},
        {"name": "web", "mode": "enforce", "domain": None,
         "hypercalls": None, "hyperv": "allow", "mem": mem, "net": net,
         "vms": 0, "bindings": 0}],
        "policy show json: %r" % out)
    out, _ = run(f, "-j", "policy", "show", "db")
    check(json.loads(out)["name"] == "db", "policy show NAME json: %r" % out)
    run(f, "policy", "del", "db")
    check("db" not in f.policies, "policy del")


def test_bind_cli(f):
    run(f, "bind", "cgroup", "/machine.slice/", "policy", "web")
    run(f, "bind", "pid", "42", "policy", "web")
    run(f, "bind", "default", "policy", "web")
    check(f.binds == {(2, "/machine.slice"): "web", (3, 42): "web",
                      (1, ""): "web"}, "binds: %r" % f.binds)
    _, err = run(f, "policy", "del", "web", expect=1)
    check(err == "kvmguard: cannot delete policy web: Device or resource "
          "busy: policy web is bound\n", "EBUSY: %r" % err)
    out, _ = run(f, "bind", "show")
    check([l.split() for l in out.splitlines()] == [
        ["SELECTOR", "POLICY"], ["default", "web"],
        ["cgroup", "/machine.slice", "web"], ["pid", "42", "web"]],
        "bind show: %r" % out)
    out, _ = run(f, "-j", "bind", "show")
    check(json.loads(out) == [
        {"selector": "default", "policy": "web"},
        {"selector": "cgroup", "cgroup": "/machine.slice", "policy": "web"},
        {"selector": "pid", "pid": 42, "policy": "web"}],
        "bind show json: %r" % out)
    run(f, "unbind", "pid", "42")
    _, err = run(f, "unbind", "pid", "42", expect=1)
    check(err.startswith("kvmguard: cannot unbind pid 42: No such file"),
          "unbind ENOENT: %r" % err)


def test_vm(f):
    f.vms = {1: vm(1, policy="web", bound_by=E["KVMGUARD_BOUND_CGROUP"],
                   hc=[(5, 7, 0), (10, 12, 3), (64, 0, 2)], hv=(4, 1),
                   mem=(1 << 30, (16 << 20) + 4096, 2, 3, 5, 1 << 63)),
             2: vm(2, comm='we"ird\n\x01\xff', mem_bytes=512 << 20,
                   flags=E["KVMGUARD_VM_F_DISCOVERED"])}
    f.vms[2]["comm"] = b'we"ird\n\x01\xff'.decode("latin-1").encode(
        "latin-1")
    out, _ = run(f, "vm", "list")
    rows = [l.split() for l in out.splitlines()]
    check(rows[0] == ["ID", "PID", "COMM", "VCPUS", "SLOTS", "MEMORY",
                      "POLICY", "BOUND-BY"], "vm list header: %r" % out)
    check(rows[1] == ["1", "1001", "qemu-system-x86", "2", "3", "4G", "web",
                      "cgroup"], "vm list row: %r" % out)
    check(rows[2][0] == "2" and rows[2][5] == "512M" and rows[2][6] == "-",
          "vm list row 2: %r" % out)
    check("\n\x01" not in out, "control characters reach the terminal")
    out, _ = run(f, "-j", "vm", "list")
    data = json.loads(out)
    check(data[0] == {"id": 1, "pid": 1001, "comm": "qemu-system-x86",
                      "cgroup": "/machine.slice/machine-qemu-1.scope",
                      "created_ns": 1700000000123456789, "vcpus": 2,
                      "memslots": 3, "mem_bytes": 4 << 30,
                      "mem_shared_bytes": 1 << 30,
                      "mem_dirty_bytes": (16 << 20) + 4096, "policy": "web",
                      "bound_by": "cgroup", "discovered": False,
                      "hypercalls": [
                          {"nr": 5, "allowed": 7, "denied": 0},
                          {"nr": 10, "allowed": 12, "denied": 3},
                          {"nr": 64, "allowed": 0, "denied": 2}],
                      "hyperv": {"allowed": 4, "denied": 1},
                      "mem_denied": {"limit": 2, "shared": 3, "ksm": 5,
                                     "dirty_log": 1 << 63},
                      "mem_ksm_madvise": 0,
                      "net_devs": []},
          "vm json: %r" % data[0])
    check(data[1]["hypercalls"] == [] and
          data[1]["hyperv"] == {"allowed": 0, "denied": 0} and
          data[1]["mem_shared_bytes"] == 0 and
          data[1]["mem_dirty_bytes"] == 0 and
          data[1]["mem_denied"] == {"limit": 0, "shared": 0, "ksm": 0,
                                    "dirty_log": 0},
          "vm json without counters: %r" % data[1])
    check(data[1]["comm"] == 'we"ird\n\x01\ufffd' and data[1]["discovered"]
          and data[1]["policy"] is None, "vm json escaping: %r" % data[1])
    out, _ = run(f, "vm", "show", "1")
    check("memory: 4G (4294967296 bytes)\n"
          "memory shared: 1G (1073741824 bytes)\n"
          "memory dirty-tracked: 16.0M (16781312 bytes)\n"
          "memory denied: limit 2, shared 3, ksm 5, dirty_log "
          "9223372036854775808\n" in out, "vm show memory: %r" % out)
    out2, _ = run(f, "vm", "show", "2")
    check("memory: 512M (536870912 bytes)\n"
          "memory shared: 0 (0 bytes)\n"
          "memory dirty-tracked: 0 (0 bytes)\n"
          "memory denied: limit 0, shared 0, ksm 0, dirty_log 0\n" in out2,
          "vm show memory without counters: %r" % out2)
    check("created: 2023-11-14T22:13:20+00:00\n" in out and
          "flags: none\n" in out and "bound by: cgroup\n" in out and
          "cgroup: /machine.slice/machine-qemu-1.scope\n" in out and
          out.endswith("hyperv calls: allowed 4, denied 1\n"
                       "hypercall 5 kick_cpu: allowed 7, denied 0\n"
                       "hypercall 10 send_ipi: allowed 12, denied 3\n"
                       "hypercall >= 64: allowed 0, denied 2\n"),
          "vm show: %r" % out)
    out, _ = run(f, "-j", "vm", "show", "2")
    check(json.loads(out)["id"] == 2, "vm show json")
    _, err = run(f, "vm", "show", "9", expect=1)
    check(err == "kvmguard: cannot get VM 9: No such file or directory: "
          "no VM 9\n", "vm show ENOENT: %r" % err)
    run(f, "vm", "set", "2", "policy", "web")
    check(f.vms[2]["policy"] == "web", "vm set")


def test_apply(f, tmp):
    f.policies.clear()
    f.binds.clear()
    f.vms = {5: vm(5)}
    conf = os.path.join(tmp, "a.conf")
    open(conf, "w").write(
        "# test config\n"
        "policy add web mode audit domain tenantA\n"
        "policy set db\n"
        "\n"
        "bind default policy db   # trailing comment\n"
        'bind cgroup "/machine.slice/with space" policy web\n'
        "bind pid 77 policy db\n"
        "vm set 5 policy web\n")
    f.log.clear()
    out, _ = run(f, "-v", "apply", conf)
    check(f.policies == {"web": P(1, "tenantA"), "db": P(0, "")},
          "apply policies: %r" % f.policies)
    check(f.binds == {(1, ""): "db", (2, "/machine.slice/with space"): "web",
                      (3, 77): "db"}, "apply binds: %r" % f.binds)
    check(f.vms[5]["policy"] == "web", "apply vm set")
    check(out.splitlines() == [
        "policy add web mode audit domain tenantA",
        "policy add db mode enforce",
        "bind default policy db",
        'bind cgroup "/machine.slice/with space" policy web',
        "bind pid 77 policy db",
        "vm set 5 policy web"], "apply -v: %r" % out)

    # idempotent: a second run sends no change request at all
    f.log.clear()
    out, _ = run(f, "-v", "apply", conf)
    check(f.changes() == [] and out == "",
          "apply not idempotent: %r %r" % (f.changes(), out))

    # dump | apply - changes nothing
    dump, _ = run(f, "dump")
    check(dump == "policy add db mode enforce\n"
          "policy add web mode audit domain tenantA\n"
          "bind default policy db\n"
          'bind cgroup "/machine.slice/with space" policy web\n'
          "# By pid, which ends with its process: not applied; bind\n"
          "# the process again once it runs.\n"
          "# bind pid 77 policy db\n" + VM_LINES, "dump: %r" % dump)
    f.log.clear()
    run(f, "apply", "-", stdin=dump.encode())
    check(f.changes() == [], "dump | apply - changed %r" % f.changes())

    # converge: change, replace, remove; bindings go before policy deletion
    open(conf, "w").write("policy add web\n"
                          "policy add new mode audit\n"
                          "bind default policy new\n")
    f.log.clear()
    out, _ = run(f, "-v", "apply", conf)
    check(f.changes() == ["POLICY_SET", "POLICY_NEW", "BIND_NEW",
                          "BIND_DEL", "BIND_DEL", "POLICY_DEL"],
          "converge order: %r" % f.changes())
    set_attrs = [a for c, a in f.log if c == "POLICY_SET"][0]
    check(set(set_attrs) == {"POLICY_NAME", "POLICY_MODE", "POLICY_DOMAIN",
                             "POLICY_HC_RESTRICT", "POLICY_HYPERV"} |
          set(MEM_RULES) | set(NET_RULES)
          and set_attrs["POLICY_DOMAIN"] == b"\0",
          "POLICY_SET must carry all fields, domain \"\": %r" % set_attrs)
    check(f.policies == {"web": P(0, ""), "new": P(1, "")},
          "converged policies: %r" % f.policies)
    check(f.binds == {(1, ""): "new"}, "converged binds: %r" % f.binds)

    # bad files change nothing and name the line
    bad = os.path.join(tmp, "bad.conf")
    open(bad, "w").write("policy add a\n"
                         "policy add a mode audit\n"
                         "bind cgroup /x policy a\n"
                         "bind cgroup /x/ policy a\n"
                         "bind pid 3 policy missing\n"
                         "policy add b colour red\n"
                         "unbind default\n"
                         "policy del a\n"
                         'bind cgroup "/unterminated policy a\n'
                         "vm set 0 policy a\n")
    f.log.clear()
    _, err = run(f, "apply", bad, expect=1)
    check(f.log == [], "a bad file must not reach the kernel: %r" % f.log)
    want = [bad + ":2: policy a is already defined on line 1",
            bad + ":4: a binding for cgroup /x is already defined on line 3",
            bad + ":6: unknown policy option 'colour'",
            bad + ":7: 'unbind' is not allowed in an apply file",
            bad + ":8: 'policy del' is not allowed in an apply file",
            bad + ":9: unterminated quote",
            bad + ":10: invalid VM id '0': expected a positive integer",
            bad + ":5: policy missing is not defined in this file"]
    got = err.splitlines()
    for w in want:
        check(any(g.startswith(w) for g in got),
              "missing error %r in %r" % (w, err))

    # a kernel refusal midway: exit 1 with the kernel's message
    open(conf, "w").write("policy add web\nvm set 99 policy web\n")
    f.log.clear()
    _, err = run(f, "apply", conf, expect=1)
    check(err == "kvmguard: cannot get VM 99: No such file or directory: "
          "no VM 99\n" + conf + ":2: vm set 99: no such VM\n" and
          f.changes() == [],
          "apply with unknown VM: %r %r" % (err, f.changes()))

    # refused on line 4 after four changes (the guard goes last): rolled
    # back, the line named; pid 77's binding, whose policy stays, is kept
    f.policies = {"keep": P(0, ""), "gone": P(0, "")}
    f.binds = {(1, ""): "keep", (3, 77): "keep"}
    open(conf, "w").write("policy add keep mode audit\n"
                          "policy add new\n"
                          "bind cgroup /x policy new\n"
                          "net guard nosuchbr0 on\n"
                          "bind default policy keep\n")
    f.log.clear()
    _, err = run(f, "apply", conf, expect=1)
    check(conf + ":4: refused: net guard nosuchbr0 on\n" in err and
          "the 4 changes made before were undone" in err,
          "rollback message: %r" % err)
    check(f.policies == {"keep": P(0, ""), "gone": P(0, "")} and
          f.binds == {(1, ""): "keep", (3, 77): "keep"},
          "rollback state: %r %r" % (f.policies, f.binds))

    # --diff prints the plan, --check finds the bridge; neither changes
    f.log.clear()
    out, _ = run(f, "apply", "--diff", conf)
    check("policy add new mode enforce" in out and "policy del gone" in out
          and "net guard nosuchbr0 on" in out, "diff: %r" % out)
    _, err = run(f, "apply", "--check", conf, expect=1)
    check(conf + ":4: net guard nosuchbr0: no such device" in err,
          "check: %r" % err)
    check(f.changes() == [], "check/diff changed %r" % f.changes())
    open(conf, "w").write("policy add keep\nbind default policy keep\n")
    out, _ = run(f, "apply", "--check", conf)
    check(out == "" and f.changes() == [], "check of a good file")


def test_dumps(f):
    f.policies = {"p%03d" % i: {"mode": i % 2, "domain": "d%d" % i}
                  for i in range(300)}
    f.binds = {}
    f.per_datagram = 7
    out, _ = run(f, "-j", "policy", "show")
    names = [p["name"] for p in json.loads(out)]
    check(names == sorted(f.policies), "multi-part dump lost entries: %d"
          % len(names))
    f.intr_dumps = 2
    f.log.clear()
    out, _ = run(f, "-j", "policy", "show")
    check(len(json.loads(out)) == 300 and len(f.log) == 3,
          "DUMP_INTR restart: %d requests, %d policies"
          % (len(f.log), len(json.loads(out))))
    f.intr_dumps = 100
    _, err = run(f, "policy", "show", expect=1)
    check("kept changing" in err, "DUMP_INTR give up: %r" % err)
    f.intr_dumps = 0
    f.policies = {}


def test_unload(f, tmp):
    """Requests racing rmmod: a dump while the module is going gets
    EPROTONOSUPPORT, any request once the family is gone ENOENT without a
    message; both say the module is not loaded (or is being unloaded). A
    plain ENOENT without a message, the family still there, keeps its
    meaning."""
    f.policies = {"web": P(0, "")}
    f.binds = {}
    msg = "the kvmguard module is not loaded (or is being unloaded)\n"
    f.unload = "going"
    for args, what in ((("bind", "show"), "cannot list bindings"),
                       (("-j", "vm", "list"), "cannot list VMs"),
                       (("dump",), "cannot list policies"),
                       (("policy", "show"), "cannot list policies")):
        out, err = run(f, *args, expect=1)
        check(err == "kvmguard: %s: %s" % (what, msg) and out == "",
              "going, %s: %r" % (" ".join(args), err))
    # a doit still reaches a going module
    run(f, "policy", "add", "p2")
    conf = os.path.join(tmp, "u.conf")
    open(conf, "w").write("policy add web\n")
    _, err = run(f, "apply", conf, expect=1)
    check(err == "kvmguard: cannot list policies: " + msg,
          "going, apply: %r" % err)
    f.unload = "gone"
    for args, what in ((("policy", "add", "x"), "cannot add policy x"),
                       (("policy", "del", "web"), "cannot delete policy web"),
                       (("unbind", "pid", "3"), "cannot unbind pid 3"),
                       (("net", "unbind", "dev", "tap0"),
                        "cannot unbind tap0"),
                       (("vm", "show", "1"), "cannot get VM 1"),
                       (("bind", "show"), "cannot list bindings")):
        out, err = run(f, *args, expect=1)
        check(err == "kvmguard: %s: %s" % (what, msg) and out == "",
              "gone, %s: %r" % (" ".join(args), err))
    f.unload = None
    # the family is there: an ENOENT without a message is the device's
    f.vms = {}
    _, err = run(f, "net", "unbind", "dev", "tap0", expect=1)
    check(err == "kvmguard: cannot unbind tap0: No such file or directory "
          "(the device is not bound to a VM)\n", "plain ENOENT: %r" % err)
    f.policies = {}


def long_cgroup(pattern):
    """A cgroup path of KVMGUARD_CGROUP_MAX bytes, components of 200."""
    out, k = "", 0
    while len(out) < CGROUP_MAX:
        seg = min(200, CGROUP_MAX - len(out) - 1)
        out += "/" + "".join(pattern[(k + i) % len(pattern)]
                             for i in range(seg))
        k += seg
    return out


def test_long_cgroup(f, tmp):
    """The longest cgroup binding: bind, show, dump | apply, unbind, and an
    empty apply file with one present; control characters too."""
    f.policies = {"web": P(0, "")}
    f.binds = {}
    path = long_cgroup("a")
    check(len(path) == CGROUP_MAX, "long_cgroup: %d" % len(path))
    f.log.clear()
    run(f, "bind", "cgroup", path, "policy", "web")
    check(f.binds == {(2, path): "web"}, "long bind: %r" % f.log[-1:])
    out, _ = run(f, "bind", "show")
    check(out.splitlines()[1:] == ["cgroup %s  web" % path],
          "long bind show: %d bytes" % len(out))
    out, _ = run(f, "-j", "bind", "show")
    check(json.loads(out) == [{"selector": "cgroup", "cgroup": path,
                               "policy": "web"}], "long bind show -j")
    dump, _ = run(f, "dump")
    check(dump.endswith("bind cgroup %s policy web\n" % path),
          "long dump: %r" % dump[-80:])
    f.log.clear()
    run(f, "apply", "-", stdin=dump.encode())
    check(f.changes() == [], "long: dump | apply - changed %r"
          % f.changes())
    run(f, "unbind", "cgroup", path)
    check(f.binds == {}, "long unbind: %r" % list(f.binds))
    _, err = run(f, "unbind", "cgroup", path, expect=1)
    check(err == "kvmguard: cannot unbind cgroup %s: No such file or "
          "directory: no such binding\n" % path, "long unbind ENOENT")

    # bound by another tool; an empty file removes it and the policy
    f.binds = {(2, path): "web"}
    empty = os.path.join(tmp, "empty.conf")
    open(empty, "w").write("")
    run(f, "apply", empty)
    check(f.binds == {} and f.policies == {}, "empty apply: %r %r"
          % (list(f.binds), f.policies))

    # control characters: the dump quotes them, four bytes each
    f.policies = {"web": P(0, "")}
    ctl = long_cgroup("b\x01")
    f.binds = {(2, ctl): "web"}
    dump, _ = run(f, "dump")
    check(dump.endswith('\\x01b\\x01" policy web\n'),
          "quoted dump cut: %r" % dump[-80:])
    f.log.clear()
    run(f, "apply", "-", stdin=dump.encode())
    check(f.changes() == [] and f.binds == {(2, ctl): "web"},
          "quoted: dump | apply - changed %r" % f.changes())
    out, _ = run(f, "-v", "apply", empty)
    check(out.startswith('unbind cgroup "/b\\x01b') and
          out.endswith('\\x01"\npolicy del web\n') and f.binds == {},
          "quoted apply -v: %r" % out[-80:])
    f.policies = {}


def test_monitor(f):
    env = f.env()
    p = subprocess.Popen(VALGRIND + [CLI, "monitor"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pj = subprocess.Popen(VALGRIND + [CLI, "-j", "monitor"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # the CLI's ports: find them from its first request-less socket is not
    # possible, so ask the kernel: /proc/net/netlink lists port by inode.
    # (valgrind may take long to start the CLI on a busy machine: wait up
    # to 60 s for both sockets, then a moment for their subscriptions)
    for _ in range(600):
        ports = netlink_ports_of(p.pid), netlink_ports_of(pj.pid)
        if all(ports):
            break
        time.sleep(0.1)
    time.sleep(3 if VALGRIND else 0.5)
    v = vm(7, comm="qemu", policy="web")
    for port in ports:
        if not port:
            fail("could not find the monitor's netlink port")
            continue
        f.event(port, E["KVMGUARD_EVENT_VM_CREATE"], v,
                1700000000 * 10**9 + 5 * 10**6)
        f.event(port, E["KVMGUARD_EVENT_VM_DESTROY"], vm(8, comm="fc"),
                1700000001 * 10**9)
        f.event(port, E["KVMGUARD_EVENT_HYPERCALL"], v, 1700000002 * 10**9,
                EVENT_HC_NR=10, EVENT_ACTION=E["KVMGUARD_ACTION_DENIED"],
                EVENT_COUNT=3)
        f.event(port, E["KVMGUARD_EVENT_HYPERV"], v, 1700000003 * 10**9,
                EVENT_ACTION=E["KVMGUARD_ACTION_AUDITED"], EVENT_COUNT=1,
                EVENT_HV_CODE=0x7fff)
        f.event(port, E["KVMGUARD_EVENT_MEMORY"], v, 1700000004 * 10**9,
                EVENT_MEM_RULE=E["KVMGUARD_MEM_RULE_LIMIT"],
                EVENT_ACTION=E["KVMGUARD_ACTION_DENIED"], EVENT_COUNT=2,
                EVENT_MEM_BYTES=(4 << 30) + 4096,
                EVENT_MEM_SLOT=(1 << 16) | 3)
        f.event(port, E["KVMGUARD_EVENT_MEMORY"], v, 1700000005 * 10**9,
                EVENT_MEM_RULE=E["KVMGUARD_MEM_RULE_KSM"],
                EVENT_ACTION=E["KVMGUARD_ACTION_AUDITED"], EVENT_COUNT=1,
                EVENT_MEM_BYTES=1 << 63, EVENT_VMM_DEFAULT=1)
        f.event(port, E["KVMGUARD_EVENT_MEMORY"], v, 1700000006 * 10**9,
                EVENT_MEM_RULE=E["KVMGUARD_MEM_RULE_SHARED"],
                EVENT_ACTION=E["KVMGUARD_ACTION_DENIED"], EVENT_COUNT=1,
                EVENT_MEM_BYTES=2 << 20, EVENT_MEM_SLOT=0xffff)
        f.event(port, E["KVMGUARD_EVENT_MEMORY"], v, 1700000007 * 10**9,
                EVENT_MEM_RULE=E["KVMGUARD_MEM_RULE_DIRTY_LOG"],
                EVENT_ACTION=E["KVMGUARD_ACTION_DENIED"], EVENT_COUNT=1,
                EVENT_MEM_BYTES=32 << 20, EVENT_MEM_SLOT=0)
        f.event(port, E["KVMGUARD_EVENT_MEMORY"], v, 1700000008 * 10**9,
                EVENT_MEM_RULE=99, EVENT_ACTION=E["KVMGUARD_ACTION_DENIED"],
                EVENT_COUNT=1, EVENT_MEM_BYTES=0)
        f.event(port, E["KVMGUARD_EVENT_NET"], v, 1700000009 * 10**9,
                EVENT_NET_RULE=E["KVMGUARD_NET_RULE_TAG"],
                EVENT_NET_DIR=E["KVMGUARD_NET_FROM_GUEST"],
                EVENT_ACTION=E["KVMGUARD_ACTION_DENIED"], EVENT_COUNT=4,
                NET_IFINDEX=7, NET_IFNAME="tap0", EVENT_NET_VID=0)
        f.event(port, E["KVMGUARD_EVENT_NET"], v, 1700000010 * 10**9,
                EVENT_NET_RULE=E["KVMGUARD_NET_RULE_SEGMENT"],
                EVENT_NET_DIR=E["KVMGUARD_NET_TO_GUEST"],
                EVENT_ACTION=E["KVMGUARD_ACTION_AUDITED"], EVENT_COUNT=1,
                NET_IFINDEX=8, NET_IFNAME="mv\x1btap", EVENT_NET_VID=4094)
        f.event(port, E["KVMGUARD_EVENT_NET"], v, 1700000011 * 10**9,
                EVENT_NET_RULE=E["KVMGUARD_NET_RULE_ISOLATE"],
                EVENT_NET_DIR=E["KVMGUARD_NET_TO_GUEST"],
                EVENT_ACTION=E["KVMGUARD_ACTION_DENIED"], EVENT_COUNT=2,
                NET_IFINDEX=7, NET_IFNAME="tap0")
        f.event(port, E["KVMGUARD_EVENT_NET"], v, 1700000012 * 10**9,
                EVENT_NET_RULE=77, EVENT_NET_DIR=5,
                EVENT_ACTION=E["KVMGUARD_ACTION_DENIED"], EVENT_COUNT=1,
                NET_IFINDEX=7, NET_IFNAME="tap0")
        f.event(port, E["KVMGUARD_EVENT_NET_GUARD"], None,
                1700000013 * 10**9, NET_IFINDEX=9, NET_IFNAME="tap9",
                NET_BRIDGE="br0", EVENT_NET_DIR=E["KVMGUARD_NET_TO_GUEST"],
                EVENT_ACTION=E["KVMGUARD_ACTION_DENIED"], EVENT_COUNT=6)
        f.event(port, E["KVMGUARD_EVENT_NET_GUARD_END"], None,
                1700000014 * 10**9, NET_IFINDEX=3, NET_IFNAME="br0")
    time.sleep(2 if VALGRIND else 0.3)
    p.send_signal(signal.SIGINT)
    pj.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    jout, jerr = pj.communicate(timeout=30)
    check(p.returncode == 0 and pj.returncode == 0,
          "monitor exit: %d %d %r %r" % (p.returncode, pj.returncode, err,
                                         jerr))
    check(out.decode().splitlines() == [
        "2023-11-14T22:13:20.005+00:00 vm_create id=7 pid=1007 comm=qemu "
        "policy=web",
        "2023-11-14T22:13:21.000+00:00 vm_destroy id=8 pid=1008 comm=fc "
        "policy=-",
        "2023-11-14T22:13:22.000+00:00 hypercall id=7 pid=1007 comm=qemu "
        "policy=web nr=10 name=send_ipi action=denied count=3",
        "2023-11-14T22:13:23.000+00:00 hyperv id=7 pid=1007 comm=qemu "
        "policy=web hv_code=0x7fff action=audited count=1",
        "2023-11-14T22:13:24.000+00:00 memory id=7 pid=1007 comm=qemu "
        "policy=web rule=limit action=denied count=2 bytes=4294971392 "
        "slot=1/3",
        "2023-11-14T22:13:25.000+00:00 memory id=7 pid=1007 comm=qemu "
        "policy=web rule=ksm action=audited vmm_default=1 count=1 "
        "bytes=9223372036854775808",
        "2023-11-14T22:13:26.000+00:00 memory id=7 pid=1007 comm=qemu "
        "policy=web rule=shared action=denied count=1 bytes=2097152 "
        "slot=0/65535",
        "2023-11-14T22:13:27.000+00:00 memory id=7 pid=1007 comm=qemu "
        "policy=web rule=dirty_log action=denied count=1 bytes=33554432 "
        "slot=0/0",
        "2023-11-14T22:13:28.000+00:00 memory id=7 pid=1007 comm=qemu "
        "policy=web rule=unknown(99) action=denied count=1 bytes=0",
        "2023-11-14T22:13:29.000+00:00 net id=7 pid=1007 comm=qemu "
        "policy=web rule=tag dir=from_guest action=denied count=4 dev=tap0 "
        "ifindex=7 vid=0",
        "2023-11-14T22:13:30.000+00:00 net id=7 pid=1007 comm=qemu "
        "policy=web rule=segment dir=to_guest action=audited count=1 "
        "dev=mv?tap ifindex=8 vid=4094",
        "2023-11-14T22:13:31.000+00:00 net id=7 pid=1007 comm=qemu "
        "policy=web rule=isolate dir=to_guest action=denied count=2 "
        "dev=tap0 ifindex=7",
        "2023-11-14T22:13:32.000+00:00 net id=7 pid=1007 comm=qemu "
        "policy=web rule=unknown(77) dir=unknown(5) action=denied count=1 "
        "dev=tap0 ifindex=7",
        "2023-11-14T22:13:33.000+00:00 net_guard dir=to_guest "
        "action=denied count=6 dev=tap9 ifindex=9 bridge=br0",
        "2023-11-14T22:13:34.000+00:00 net_guard_end dev=br0 ifindex=3"],
        "monitor: %r" % out)
    lines = [json.loads(l) for l in jout.decode().splitlines()]
    check(lines == [
        {"event": "vm_create", "time_ns": 1700000000005000000,
         "vm": {"id": 7, "pid": 1007, "comm": "qemu"}, "policy": "web"},
        {"event": "vm_destroy", "time_ns": 1700000001000000000,
         "vm": {"id": 8, "pid": 1008, "comm": "fc"}, "policy": None},
        {"event": "hypercall", "time_ns": 1700000002000000000,
         "vm": {"id": 7, "pid": 1007, "comm": "qemu"}, "policy": "web",
         "nr": 10, "action": "denied", "count": 3},
        {"event": "hyperv", "time_ns": 1700000003000000000,
         "vm": {"id": 7, "pid": 1007, "comm": "qemu"}, "policy": "web",
         "hv_code": 0x7fff, "action": "audited", "count": 1},
        {"event": "memory", "time_ns": 1700000004000000000,
         "vm": {"id": 7, "pid": 1007, "comm": "qemu"}, "policy": "web",
         "rule": "limit", "action": "denied", "count": 2,
         "bytes": (4 << 30) + 4096, "slot": {"as_id": 1, "id": 3}},
        {"event": "memory", "time_ns": 1700000005000000000,
         "vm": {"id": 7, "pid": 1007, "comm": "qemu"}, "policy": "web",
         "rule": "ksm", "action": "audited", "count": 1, "bytes": 1 << 63,
         "vmm_default": True},
        {"event": "memory", "time_ns": 1700000006000000000,
         "vm": {"id": 7, "pid": 1007, "comm": "qemu"}, "policy": "web",
         "rule": "shared", "action": "denied", "count": 1,
         "bytes": 2 << 20, "slot": {"as_id": 0, "id": 65535}},
        {"event": "memory", "time_ns": 1700000007000000000,
         "vm": {"id": 7, "pid": 1007, "comm": "qemu"}, "policy": "web",
         "rule": "dirty_log", "action": "denied", "count": 1,
         "bytes": 32 << 20, "slot": {"as_id": 0, "id": 0}},
        {"event": "memory", "time_ns": 1700000008000000000,
         "vm": {"id": 7, "pid": 1007, "comm": "qemu"}, "policy": "web",
         "rule": "unknown", "rule_nr": 99, "action": "denied", "count": 1,
         "bytes": 0},
        {"event": "net", "time_ns": 1700000009000000000,
         "vm": {"id": 7, "pid": 1007, "comm": "qemu"}, "policy": "web",
         "rule": "tag", "dir": "from_guest", "action": "denied", "count": 4,
         "dev": "tap0", "ifindex": 7, "vid": 0},
        {"event": "net", "time_ns": 1700000010000000000,
         "vm": {"id": 7, "pid": 1007, "comm": "qemu"}, "policy": "web",
         "rule": "segment", "dir": "to_guest", "action": "audited",
         "count": 1, "dev": "mv\x1btap", "ifindex": 8, "vid": 4094},
        {"event": "net", "time_ns": 1700000011000000000,
         "vm": {"id": 7, "pid": 1007, "comm": "qemu"}, "policy": "web",
         "rule": "isolate", "dir": "to_guest", "action": "denied",
         "count": 2, "dev": "tap0", "ifindex": 7},
        {"event": "net", "time_ns": 1700000012000000000,
         "vm": {"id": 7, "pid": 1007, "comm": "qemu"}, "policy": "web",
         "rule": "unknown", "rule_nr": 77, "dir": "unknown", "dir_nr": 5,
         "action": "denied", "count": 1, "dev": "tap0", "ifindex": 7},
        {"event": "net_guard", "time_ns": 1700000013000000000,
         "dir": "to_guest", "action": "denied", "count": 6, "dev": "tap9",
         "ifindex": 9, "bridge": "br0"},
        {"event": "net_guard_end", "time_ns": 1700000014000000000,
         "dev": "br0", "ifindex": 3}],
        "monitor json: %r" % lines)


def netlink_ports_of(pid):
    """Port id of the NETLINK_GENERIC socket of process pid (or a child,
    under valgrind the pid is valgrind's which execs the tool in place)."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            m = re.match(r"socket:\[(\d+)\]", link)
            if m:
                inodes.add(m.group(1))
    except OSError:
        return None
    for line in open("/proc/net/netlink").read().splitlines()[1:]:
        cols = line.split()
        if cols[1] == "16" and cols[-1] in inodes:
            return int(cols[2])
    return None


def main():
    global CLI, VALGRIND
    CLI = os.path.abspath(sys.argv[1])
    if os.environ.get("VALGRIND", "1") != "0" and shutil.which("valgrind"):
        VALGRIND = ["valgrind", "-q", "--leak-check=full",
                    "--show-leak-kinds=all", "--errors-for-leak-kinds=all",
                    "--error-exitcode=99"]
    import tempfile
    try:
        f = Fake()
    except OSError as e:
        print("SKIP: cannot open a netlink socket: %s" % e)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        for t in (test_policy_cli, test_bind_cli, test_vm,
                  lambda f: test_apply(f, tmp), lambda f: test_rules(f, tmp),
                  lambda f: test_mem(f, tmp), lambda f: test_net(f, tmp),
                  lambda f: test_guard(f, tmp),
                  lambda f: test_unload(f, tmp),
                  lambda f: test_long_cgroup(f, tmp),
                  test_dumps, test_monitor):
            t(f)
    f.stop = True
    f.sock.close()
    if FAILS:
        print("fakekernel: %d failure(s)" % len(FAILS))
        return 1
    print("fakekernel: all tests passed%s"
          % (" (under valgrind)" if VALGRIND else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
