"""A virtual M100/R200 UHF reader with a field of tags.

0x22 → one notice per tag in the field, or ``BB 01 FF 00 01 15 16 7E`` when the field is empty.
0x27 → rounds streamed until the count is reached or 0x28 arrives (acknowledged ``BB 01 28 00 01 00 2A 7E``).
0x03 → version strings; 0x08/0x07, 0xB7/0xB6 → region and power; anything else or a bad checksum → error 0x17.
Output is paced at the line speed, so a full field cannot report faster than the real link would.
"""

from __future__ import annotations

import threading
from pathlib import Path

from bingobox.protocol import m100

from .config import SimReader, check_epc
from .serial_device import SerialDevice
from .serial_endpoints import Endpoint

VERSIONS = {0: b"M100 26dBm V1.0", 1: b"V2.3.1", 2: b"bingobox-sim"}


class VirtualReader(SerialDevice):
    kind = "rfid"

    def __init__(self, cfg: SimReader, run_dir: Path, seed: int = 0) -> None:
        super().__init__(cfg.name, run_dir, cfg.tcp_port, cfg.baudrate, seed, cfg.tcp_protocol)
        self.cfg = cfg
        self.framing = m100.FRAMINGS[cfg.framing]
        self.field: dict[str, int] = {e: cfg.rssi for e in cfg.tags}  # EPC hex → base RSSI
        self._decoder = m100.Decoder(self.framing, accept_types=(m100.TYPE_COMMAND,), max_payload=64)
        self._field_lock = threading.Lock()
        self._stream: threading.Thread | None = None
        self._stop_stream = threading.Event()
        self.region = 0x01
        self.power = 2000
        self.stats.update({"rounds": 0, "notices": 0})

    # the physical world ----------------------------------------------------------------------------
    def add_tags(self, epcs: list[str], rssi: int | None = None) -> int:
        with self._field_lock:
            for e in epcs:
                self.field[check_epc(e)] = self.cfg.rssi if rssi is None else rssi
            return len(self.field)

    def remove_tags(self, epcs: list[str]) -> int:
        with self._field_lock:
            for e in epcs:
                self.field.pop(check_epc(e), None)
            return len(self.field)

    def set_tags(self, epcs: list[str]) -> int:
        with self._field_lock:
            self.field = {check_epc(e): self.cfg.rssi for e in epcs}
            return len(self.field)

    def status(self) -> dict:
        return {**super().status(), "framing": self.cfg.framing, "tags": sorted(self.field),
                "streaming": bool(self._stream and self._stream.is_alive())}

    def on_unplug(self) -> None:
        self._stop_stream.set()

    # protocol --------------------------------------------------------------------------------------
    def on_bytes(self, data: bytes, endpoint: Endpoint) -> None:
        before = self._decoder.stats["bad_checksum"]
        for cmd in self._decoder.feed(data):
            self.stats["requests"] += 1
            if isinstance(cmd, m100.Command):
                self._handle(cmd, endpoint)
        if self._decoder.stats["bad_checksum"] > before:
            self._error(m100.ERR_BAD_COMMAND, endpoint)

    def _reply(self, cmd: int, params: bytes, endpoint: Endpoint) -> None:
        self.send(m100.encode(m100.TYPE_RESPONSE, cmd, params, self.framing), endpoint)

    def _error(self, code: int, endpoint: Endpoint) -> None:
        self.send(m100.encode_frame(m100.ErrorFrame(code), self.framing), endpoint)

    def _handle(self, c: m100.Command, endpoint: Endpoint) -> None:
        if c.cmd == m100.CMD_SINGLE_INVENTORY and not c.params:
            self._round(m100.CMD_SINGLE_INVENTORY, endpoint)
        elif c.cmd == m100.CMD_MULTI_POLL and len(c.params) == 3 and c.params[0] == 0x22:
            self._start_stream(int.from_bytes(c.params[1:3], "big"), endpoint)
        elif c.cmd == m100.CMD_STOP_MULTI_POLL and not c.params:
            self._stop_stream.set()
            if self._stream and self._stream is not threading.current_thread():
                self._stream.join(timeout=2)
            self._reply(m100.CMD_STOP_MULTI_POLL, b"\x00", endpoint)
        elif c.cmd == m100.CMD_HW_VERSION and len(c.params) == 1 and c.params[0] in VERSIONS:
            self._reply(m100.CMD_HW_VERSION, bytes((c.params[0],)) + VERSIONS[c.params[0]], endpoint)
        elif c.cmd == m100.CMD_GET_REGION and not c.params:
            self._reply(m100.CMD_GET_REGION, bytes((self.region,)), endpoint)
        elif c.cmd == m100.CMD_SET_REGION and len(c.params) == 1:
            self.region = c.params[0]
            self._reply(m100.CMD_SET_REGION, b"\x00", endpoint)
        elif c.cmd == m100.CMD_GET_POWER and not c.params:
            self._reply(m100.CMD_GET_POWER, self.power.to_bytes(2, "big"), endpoint)
        elif c.cmd == m100.CMD_SET_POWER and len(c.params) == 2:
            self.power = int.from_bytes(c.params, "big")
            self._reply(m100.CMD_SET_POWER, b"\x00", endpoint)
        else:
            self._error(m100.ERR_BAD_COMMAND, endpoint)

    def _round(self, cmd: int, endpoint: Endpoint) -> None:
        with self._field_lock:
            tags = list(self.field.items())
        self.stats["rounds"] += 1
        read = [(e, r) for e, r in tags if not (self.faults.drop_reads and self.rng.random() < self.faults.drop_reads)]
        if not read:
            self._error(m100.ERR_NO_TAG, endpoint)
            return
        noise = self.cfg.rssi_noise
        for epc, rssi in read:
            r = max(-128, min(-1, rssi + (self.rng.randint(-noise, noise) if noise else 0)))
            self.send(m100.tag_notice(bytes.fromhex(epc), r, cmd, self.framing), endpoint, checksum_index=-2)
            self.stats["notices"] += 1

    def _start_stream(self, rounds: int, endpoint: Endpoint) -> None:
        self._stop_stream.set()
        if self._stream and self._stream.is_alive():
            self._stream.join(timeout=2)
        self._stop_stream = stop = threading.Event()

        def run() -> None:
            for _ in range(rounds):
                if stop.is_set():
                    return
                self._round(m100.CMD_MULTI_POLL, endpoint)
                if self.cfg.round_s:
                    stop.wait(self.cfg.round_s)

        self._stream = threading.Thread(target=run, name=f"{self.name}-multipoll", daemon=True)
        self._stream.start()
