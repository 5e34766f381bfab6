"""The kernel link backend: iptables and tc where the node's packets are (its namespace here,
the node itself over SSH in a lab), scoped to the control-plane endpoints.

    from bench.faults.kernel import Endpoint, KernelLink

    link = KernelLink("edge-1", ns.run, [Endpoint(ns.host_addr, (6443,))])
    with link.cut("blackhole"):        # DROP both ways: connections hang, ESTABLISHED
        ...
    with link.loss(20), link.bandwidth(50):
        ...
    link.restore()                     # everything of the link removed (idempotent)

The link's state (cut, losses, shaping) is rendered whole by :mod:`.rules` and installed with
one shell round trip per change: one ``iptables-restore --noflush`` rewriting the link's two
chains, ``tc -batch`` when the shaping changed, and the dead-man timer (:mod:`.deadman`)
armed with the first fault and disarmed with the last.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import time
from collections.abc import Sequence
from typing import Literal, cast

from bench.errors import FaultError
from bench.faults.base import (
    DIRECTIONS,
    CutMode,
    Direction,
    Fault,
    FaultKind,
    Link,
    non_negative,
)
from bench.faults.kernel.deadman import DeadMan, claim_script
from bench.faults.kernel.rules import (
    Endpoint,
    LinkConfig,
    LinkState,
    Shape,
    iptables_payload,
    kill_filters,
    shaping_script,
    teardown_script,
)
from bench.runner import Runner

log = logging.getLogger(__name__)

#: preferred iptables binaries, first found wins (``EDGEBENCH_IPTABLES`` overrides)
IPTABLES_CANDIDATES = ("iptables-nft", "iptables-legacy", "iptables")
Way = Literal["in", "out"]


def _ways(direction: Direction) -> tuple[Way, ...]:
    if direction not in DIRECTIONS:
        raise FaultError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    # upstream: node -> control plane (OUTPUT, device egress); downstream: the reverse
    ways: dict[str, tuple[Way, ...]] = {
        "both": ("out", "in"),
        "upstream": ("out",),
        "downstream": ("in",),
    }
    return ways[direction]


class KernelFault(Fault):
    """A loss, bandwidth or latency fault: a contribution to the link's rendered state."""

    def __init__(
        self,
        link: KernelLink,
        kind: str,
        description: str,
        losses: tuple[tuple[float, Way], ...] = (),
        shapes: dict[Way, Shape] | None = None,
    ) -> None:
        super().__init__(link, kind, description)
        self.losses = losses
        self.shapes = shapes or {}

    def _apply(self) -> None:
        cast(KernelLink, self.link)._add(self)

    def _remove(self) -> None:
        cast(KernelLink, self.link)._discard(self)


class KernelLink(Link):
    """Faults by iptables/tc on the node's side of one link, through ``run``.

    ``run`` runs an argv where the node's packets are (``NodeNamespace.run``, or an SSH
    runner); ``endpoints`` are the control-plane addresses (and ports) the faults apply to,
    nothing else is touched. ``dev`` is the node's interface towards them (found with
    ``ip route get`` when omitted). ``owner_pid`` is the harness pid the dead-man timer
    watches (default: this process; None over SSH: then only ``hold_s + margin_s`` bounds a
    fault's life).
    """

    backend = "kernel"

    def __init__(
        self,
        name: str,
        run: Runner,
        endpoints: Sequence[Endpoint],
        dev: str | None = None,
        *,
        chain: str = "EDGEBENCH",
        ifb: str | None = None,
        iptables: str | None = None,
        owner_pid: int | Literal["self"] | None = "self",
        hold_s: float = 1800.0,
        margin_s: float = 30.0,
        poll_s: float = 0.5,
    ) -> None:
        super().__init__(name)
        if not endpoints:
            raise FaultError(f"link {name}: a kernel link needs at least one endpoint")
        non_negative(hold_s=hold_s, margin_s=margin_s, poll_s=poll_s)
        self.run = run
        #: the harness process the dead-man timer watches (None: only the time bound)
        self.owner_pid = os.getpid() if owner_pid == "self" else owner_pid
        #: the dead-man timer fires this long after the first fault (plus ``margin_s``)
        self.hold_s = hold_s
        self.margin_s = margin_s
        self.poll_s = poll_s
        self.deadman = DeadMan(name)
        probe = self._probe(endpoints[0], iptables, dev)
        #: the iptables binary used (``iptables-nft`` or ``iptables-legacy``)
        self.iptables = probe["iptables"]
        self.netem = probe.get("netem") == "1"
        self.ifb_available = probe.get("ifb") == "1"
        self.tc = probe.get("tc") == "1"
        digest = hashlib.sha1(name.encode()).hexdigest()
        self.cfg = LinkConfig(
            chain=chain,
            dev=probe["dev"],
            ifb=ifb or f"ebi{digest[:8]}",
            iptables=self.iptables,
            endpoints=tuple(endpoints),
        )
        self._faults: list[KernelFault] = []
        self._cut: CutMode | None = None
        self._installed = LinkState()
        self._deadline: float | None = None  # monotonic: when the armed timer fires

    def __repr__(self) -> str:
        return f"<KernelLink {self.name} dev={self.cfg.dev} via {self.iptables}>"

    # --- probing ---------------------------------------------------------------------------

    def _probe(self, first: Endpoint, iptables: str | None, dev: str | None) -> dict[str, str]:
        wanted = iptables or os.environ.get("EDGEBENCH_IPTABLES") or ""
        candidates = (wanted,) if wanted else IPTABLES_CANDIDATES
        addr = first.cidr.split("/")[0]
        script = "\n".join(
            [
                f"for b in {' '.join(map(shlex.quote, candidates))}; do",
                '  if command -v "$b" >/dev/null && command -v "$b-restore" >/dev/null; then',
                '    echo "iptables=$b"; break; fi',
                "done",
                (
                    f"echo dev={shlex.quote(dev)}"
                    if dev
                    else f"ip -o -4 route get {addr} | sed -n 's/.* dev \\([^ ]*\\).*/dev=\\1/p'"
                ),
                "command -v tc >/dev/null && echo tc=1",
                "p=ebp$$",
                "if ip link add $p type ifb 2>/dev/null; then echo ifb=1",
                "  tc qdisc add dev $p root netem delay 1ms 2>/dev/null && echo netem=1",
                "  ip link del $p; fi",
                "true",
            ]
        )
        result = self.run(["sh", "-c", script])
        found = dict(line.split("=", 1) for line in result.out.splitlines() if "=" in line)
        if "iptables" not in found:
            raise FaultError(
                f"link {self.name}: none of {', '.join(candidates)} (with its -restore) found "
                "where the node runs; install iptables (Debian: apt-get install iptables)"
            )
        if not found.get("dev"):
            raise FaultError(
                f"link {self.name}: no route to {addr} from the node; "
                f"the endpoints must be reachable before a kernel link is made ({result.explain()})"
            )
        return found

    def capabilities(self) -> frozenset[FaultKind]:
        kinds = {FaultKind.CUT_BLACKHOLE, FaultKind.CUT_RESET, FaultKind.LOSS}
        if self.tc and self.ifb_available:
            kinds.add(FaultKind.BANDWIDTH)
            if self.netem:
                kinds.add(FaultKind.LATENCY)
        return frozenset(kinds)

    # --- faults ----------------------------------------------------------------------------

    def loss(self, percent: float, direction: Direction = "both") -> Fault:
        self.require(FaultKind.LOSS)
        non_negative(percent=percent)
        if percent > 100:
            raise FaultError(f"loss percent must be 0..100, got {percent}")
        ways = _ways(direction)
        return KernelFault(
            self,
            "loss",
            f"loss(percent={percent:g}, direction={direction})",
            losses=tuple((percent / 100.0, w) for w in ways),
        )

    def bandwidth(self, kbps: float, direction: Direction = "both") -> Fault:
        self.require(FaultKind.BANDWIDTH)
        non_negative(kbps=kbps)
        if kbps <= 0:
            raise FaultError("bandwidth kbps must be > 0 (a cut is cut(), not a 0 cap)")
        ways = _ways(direction)
        return KernelFault(
            self,
            "bandwidth",
            f"bandwidth(kbps={kbps:g}, direction={direction})",
            shapes={w: Shape(rate_bps=kbps * 1000.0) for w in ways},
        )

    def latency(self, ms: float, jitter_ms: float = 0, direction: Direction = "both") -> Fault:
        """netem delay; only on kernels where the probe found netem (not on these machines)."""
        self.require(FaultKind.LATENCY)
        non_negative(ms=ms, jitter_ms=jitter_ms)
        ways = _ways(direction)
        return KernelFault(
            self,
            "latency",
            f"latency(ms={ms:g}, jitter_ms={jitter_ms:g}, direction={direction})",
            shapes={w: Shape(delay_ms=ms, jitter_ms=jitter_ms) for w in ways},
        )

    def restore(self) -> None:
        """Stop flaps, remove every rule, chain, qdisc and ifb of the link, disarm the timer.

        Never raises: a failure is logged (the dead-man timer, if armed, still fires).
        """
        self._forget_state()
        with self._lock:
            self._faults.clear()
            self._cut = None
            script = "\n".join([claim_script(self.deadman.tag, None), teardown_script(self.cfg)])
            try:
                result = self.run(["sh", "-c", script])
                if not result.ok:
                    log.warning("restoring kernel link %s: %s", self.name, result.explain())
            except Exception as e:  # teardown never raises
                log.warning("restoring kernel link %s failed: %s", self.name, e)
            self.deadman.armed = False
            self._deadline = None
            self._installed = LinkState()

    def dropped_packets(self) -> int:
        """Packets the link's DROP rules (cuts, loss) dropped since its faults last changed,
        both directions: the evidence that a loss fault bites."""
        total = 0
        for chain in (self.cfg.chain_in, self.cfg.chain_out):
            result = self.run([self.iptables, "-w", "-L", chain, "-v", "-x", "-n"])
            if not result.ok:
                continue  # no fault: no chain
            for line in result.out.splitlines()[2:]:
                fields = line.split()
                if len(fields) > 2 and fields[2] == "DROP":
                    total += int(fields[0])
        return total

    # --- state -----------------------------------------------------------------------------

    def _set_down(self, mode: CutMode, down: bool) -> None:
        self._cut = mode if down else None
        self._sync(kill=down and mode == "reset")

    def _add(self, fault: KernelFault) -> None:
        with self._lock:
            self._faults.append(fault)
            try:
                self._sync()
            except BaseException:
                self._faults.remove(fault)
                raise

    def _discard(self, fault: KernelFault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)
            self._sync()

    def state(self) -> LinkState:
        """What the link's faults add up to now: losses stack, the lowest cap wins."""
        losses = tuple(item for f in self._faults for item in f.losses)
        shapes: dict[Way, Shape] = {"in": Shape(), "out": Shape()}
        for fault in self._faults:
            for way, shape in fault.shapes.items():
                cur = shapes[way]
                rates = [r for r in (cur.rate_bps, shape.rate_bps) if r is not None]
                delays = [d for d in (cur.delay_ms, shape.delay_ms) if d is not None]
                shapes[way] = Shape(
                    rate_bps=min(rates) if rates else None,
                    delay_ms=sum(delays) if delays else None,
                    jitter_ms=max(cur.jitter_ms, shape.jitter_ms),
                )
        return LinkState(cut=self._cut, losses=losses, egress=shapes["out"], ingress=shapes["in"])

    def reinstall(self) -> bool:
        """Install the link's faults afresh where ``run`` now points, after the node lost them:
        a reboot (iptables rules, qdiscs and the dead-man timer do not survive one) or a
        restarted container (a new, empty namespace). The old timer is claimed if it is still
        there (its rules went with the old namespace: not a firing) and a new one is armed for
        the time the first arming had left; connections the agent opened meanwhile are killed
        under a ``reset`` cut, as when it went in. False (nothing done) without faults, and
        when the old timer's deadline has passed: it would have fired, so the faults stay off
        (``deadman.fired``, a warning) rather than being cut again for a token second."""
        with self._lock:
            self._installed = LinkState()
            if self.state().empty:
                return False
            if self.deadman.armed and self._deadline is not None:
                late = time.monotonic() - self._deadline
                if late >= 0:
                    self.deadman.fired = True
                    self.deadman.armed = False
                    self._deadline = None
                    log.warning(
                        "link %s: its dead-man timer would have fired %.1fs ago (hold_s=%s, "
                        "margin_s=%s): its faults are not installed again",
                        self.name,
                        late,
                        self.hold_s,
                        self.margin_s,
                    )
                    return False
            self._sync(kill=self._cut == "reset", fresh=True)
            return True

    def _sync(self, kill: bool = False, fresh: bool = False) -> None:
        """Install the current state in one shell round trip (see :mod:`.deadman`); ``fresh``:
        into a new namespace, where a missing jump does not mean the timer fired."""
        with self._lock:
            new = self.state()
            ipt = shlex.quote(self.iptables)
            cfg = self.cfg
            jump_missing = f"! {ipt} -w -C OUTPUT -j {cfg.chain_out} 2>/dev/null"
            lines = [
                claim_script(self.deadman.tag, None)
                if fresh
                else self.deadman.claim_lines(jump_missing),
                f"{ipt}-restore -w --noflush <<'EDGEBENCH_IPT' || exit 1",
                iptables_payload(cfg, new).rstrip("\n"),
                "EDGEBENCH_IPT",
            ]
            if not new.empty:
                for parent, chain in (("INPUT", cfg.chain_in), ("OUTPUT", cfg.chain_out)):
                    lines.append(
                        f"{ipt} -w -C {parent} -j {chain} 2>/dev/null"
                        f" || {ipt} -w -I {parent} 1 -j {chain} || exit 1"
                    )
            if (new.egress, new.ingress) != (self._installed.egress, self._installed.ingress):
                lines.append(shaping_script(cfg, new))
            elif new.shaped:  # a timer that fired removed the shaping too
                lines.append(f'if [ "$fired" = 1 ]; then\n{shaping_script(cfg, new)}\nfi')
            if kill:
                lines += [f"ss -K -tn {k} >/dev/null 2>&1" for k in kill_filters(cfg.endpoints)]
            now = time.monotonic()
            if not self.deadman.armed or self._deadline is None:
                self._deadline = now + self.hold_s + self.margin_s
            if not new.empty:
                left = max(1.0, self._deadline - now)
                lines.append(
                    self.deadman.arm_lines(teardown_script(cfg), left, self.owner_pid, self.poll_s)
                )
            result = self.run(["sh", "-c", "\n".join(lines)])
            if not result.ok:
                raise FaultError(
                    f"kernel link {self.name}: installing {new} failed: {result.explain()}"
                )
            self._installed = new
            if "fired" in result.out.split():
                self.deadman.fired = True
                self._deadline = now + self.hold_s + self.margin_s
                log.warning(
                    "the dead-man timer of link %s fired before its faults were removed "
                    "(hold_s=%s, margin_s=%s): the link was restored early; re-installed",
                    self.name,
                    self.hold_s,
                    self.margin_s,
                )
            self.deadman.armed = not new.empty
            if new.empty:
                self._deadline = None
